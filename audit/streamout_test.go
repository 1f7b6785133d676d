package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleResult(n int) *Result {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &Result{Start: t0, End: t0.Add(time.Minute), Verdict: VerdictOpen,
		Vantage: Vantage{SourceAddrs: []string{"192.0.2.1"}, UTC: t0, LocalOffset: "+00:00"},
		Options: OptionsSummary{From: "a@example.net", To: "b@example.net", Depth: DepthData, Ports: []int{25}}}
	for i := range n {
		tr := TargetResult{Target: fmt.Sprintf("d%d.example", i), Kind: "domain", Verdict: VerdictClosed,
			Endpoints: []EndpointResult{{MXHost: "mx", Address: "192.0.2.9", Port: 25, TLS: "none", Verdict: VerdictClosed,
				Tests:       []TestResult{{ID: "R1", MailFrom: "<x@y>", RcptTo: "<v@w&z>", Outcome: OutcomeDenied}},
				Transcripts: []Transcript{{Remote: "192.0.2.9:25", Start: t0, End: t0, Lines: []TranscriptLine{{T: t0, Dir: "S", Text: strings.Repeat("x", i*37)}}}}}}}
		if i%3 == 0 {
			tr.Verdict, tr.Triggers = VerdictOpen, []string{"mx 192.0.2.9:25/none R1"}
		}
		r.Targets = append(r.Targets, tr)
	}
	return r
}

// The streamed document is the Result, with the same fields and values,
// and its targets array is byte for byte what json.Encoder writes, in
// the targets' order whatever order they finish in; out-of-order targets
// past the memory budget go through the spill file.
func TestResultWriterJSON(t *testing.T) {
	for _, spill := range []int{DefaultSpillAt, 1} {
		t.Run(fmt.Sprintf("spill at %d", spill), func(t *testing.T) {
			want := sampleResult(40)
			var buf bytes.Buffer
			w, err := NewResultWriter(&buf, "json", len(want.Targets))
			if err != nil {
				t.Fatal(err)
			}
			w.spillAt = spill
			w.Start(Result{Start: want.Start, Options: want.Options})
			order := rand.New(rand.NewPCG(1, 2)).Perm(len(want.Targets))
			for _, i := range order[:35] {
				w.Target(i, want.Targets[i])
			}
			w.Target(order[0], TargetResult{Target: "duplicate"}) // ignored
			if spill == 1 && w.spill == nil {
				t.Fatal("nothing spilled with a budget of 1 byte")
			}
			// The last five are cut short: Finish takes them from the Result.
			if err := w.Finish(want); err != nil {
				t.Fatal(err)
			}
			if w.spill != nil {
				t.Fatal("spill file left open")
			}
			var got Result
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("not a Result: %v\n%s", err, buf.String())
			}
			if !reflect.DeepEqual(&got, want) {
				t.Fatalf("streamed Result differs from the original")
			}
			var enc bytes.Buffer
			e := json.NewEncoder(&enc)
			e.SetIndent("  ", "  ")
			e.Encode(want.Targets)
			if !bytes.Contains(buf.Bytes(), []byte(`"targets": `+strings.TrimSpace(enc.String()))) {
				t.Fatalf("targets array differs from json.Encoder's:\n%s", buf.String())
			}
			var keys []string
			dec := json.NewDecoder(&buf)
			dec.Token()
			for dec.More() {
				k, _ := dec.Token()
				keys = append(keys, k.(string))
				var skip json.RawMessage
				dec.Decode(&skip)
			}
			if strings.Join(keys, ",") != "start,options,targets,end,vantage,verdict" {
				t.Fatalf("fields %v", keys)
			}
		})
	}
}

// jsonl is one TargetResult per line, in the targets' order.
func TestResultWriterJSONL(t *testing.T) {
	want := sampleResult(7)
	var buf bytes.Buffer
	w, _ := NewResultWriter(&buf, "jsonl", len(want.Targets))
	w.Start(*want)
	for _, i := range []int{3, 1, 0, 6, 2, 5, 4} {
		w.Target(i, want.Targets[i])
	}
	if err := w.Finish(want); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	n := 0
	for ; sc.Scan(); n++ {
		var tr TargetResult
		if err := json.Unmarshal(sc.Bytes(), &tr); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		if !reflect.DeepEqual(tr, want.Targets[n]) {
			t.Fatalf("line %d is %s, want %s", n+1, tr.Target, want.Targets[n].Target)
		}
	}
	if n != len(want.Targets) {
		t.Fatalf("%d lines for %d targets", n, len(want.Targets))
	}
}

type failWriter struct{ n int }

var errFull = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errFull
	}
	return len(p), nil
}

// A write error (a closed pipe, a full disk) is returned by Finish.
func TestResultWriterError(t *testing.T) {
	want := sampleResult(200)
	w, _ := NewResultWriter(&failWriter{n: 70 << 10}, "json", len(want.Targets))
	for i, tr := range want.Targets {
		w.Target(i, tr)
	}
	if err := w.Finish(want); !errors.Is(err, errFull) {
		t.Fatalf("Finish: %v, want the write error", err)
	}
	if _, err := NewResultWriter(nil, "xml", 1); err == nil {
		t.Fatal("format xml accepted")
	}
}

// appendIndented writes what json.Indent writes.
func FuzzAppendIndented(f *testing.F) {
	f.Add([]byte(`{"a":[1,2,{"b":"x\"y\\","c":[]},{}],"d":null,"e":-1.5e3,"f":"<&>\u2028","g":true}`))
	data, _ := json.Marshal(sampleResult(3))
	f.Add(data)
	f.Fuzz(func(t *testing.T, src []byte) {
		var compact bytes.Buffer
		if json.Compact(&compact, src) != nil {
			return
		}
		var want bytes.Buffer
		json.Indent(&want, compact.Bytes(), "    ", "  ")
		if got := appendIndented(nil, compact.Bytes(), "    "); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("appendIndented(%s)\n got %s\nwant %s", compact.Bytes(), got, want.Bytes())
		}
	})
}
