package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
)

// oldMarshal is how Marshal encoded a bundle before encodeBundle: seal
// with the reference canonical form, then json.Encoder with SetIndent.
func oldMarshal(t testing.TB, b *Bundle) []byte {
	t.Helper()
	in := &Integrity{Algorithm: b.algorithm()}
	ref := refJCS
	if in.Algorithm == AlgLegacy {
		ref = oldCanonical
	}
	var content []bool
	for _, s := range b.sections() {
		data, err := json.Marshal(s.value)
		if err != nil {
			t.Fatal(err)
		}
		canon, err := ref(data)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(canon)
		in.Sections = append(in.Sections, SectionHash{Name: s.name, SHA256: hex.EncodeToString(sum[:])})
		content = append(content, s.content)
	}
	in.Digest, in.Manifest = listHashes(in.Sections, content)
	c := *b
	c.Integrity = in
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&c); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bigBundle is an audit of n hosts shaped like the bench's: one endpoint
// each with about 60 tests and their transcripts, hostile text included.
func bigBundle(n int) *Bundle {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	b := New(t0)
	b.Engagement = Engagement{Client: "Example <GmbH> & Co", Operator: "alice", Scope: []string{"targets.txt"}}
	b.Tool = CurrentTool("1.0.0", "abc123")
	res := &audit.Result{Start: t0, End: t0.Add(5 * time.Second), Verdict: audit.VerdictOpen,
		Vantage: audit.Vantage{SourceAddrs: []string{"127.0.0.1"}, UTC: t0, LocalOffset: "+00:00"},
		Options: audit.OptionsSummary{From: "probe@relaylock.test", To: "x@example.net", Depth: "rcpt", Ports: []int{25, 587}}}
	texts := []string{"250 OK", "MAIL FROM:<probe@relaylock.test>", "RCPT TO:<\"x@y\"@example.net>", "550 5.7.1 Unable to relay",
		"220 mx.example.com ESMTP \u2028 ready", "bad utf8 \xff\xfe", "tab\there", "", "354 go ahead & end with <CRLF>.<CRLF>"}
	for i := range n {
		host := fmt.Sprintf("127.0.%d.%d", i/250, i%250+1)
		ep := audit.EndpointResult{MXHost: host, Address: host, Port: 2525, TLS: "none", Verdict: audit.VerdictOpen,
			Banner: "220 " + host + " ESMTP", Extensions: []string{"PIPELINING", "8BITMIME", "SIZE 0"},
			Triggers: []string{"R1"}, Connections: 60, RoundTrips: 400, Commands: 300, Start: t0, End: t0.Add(time.Second)}
		for k := range 60 {
			ts := t0.Add(time.Duration(k) * time.Millisecond)
			ep.Tests = append(ep.Tests, audit.TestResult{ID: "R" + strconv.Itoa(k), Title: "Relay test <" + strconv.Itoa(k) + ">",
				Kind: "recipient", MailFrom: "<probe@relaylock.test>", RcptTo: "<x%y@example.net>", Outcome: audit.OutcomeAccepted,
				Reply: &audit.Reply{Code: 250, Enhanced: "2.1.5", Lines: []string{texts[r.IntN(len(texts))]}}, Conn: k})
			tr := audit.Transcript{Conn: k, Local: "127.0.0.1:40000", Remote: host + ":2525", Start: ts, End: ts}
			for l := range 10 {
				tr.Lines = append(tr.Lines, audit.TranscriptLine{T: ts.Add(time.Duration(l) * time.Microsecond), Dir: "CS*"[l%3 : l%3+1], Text: texts[r.IntN(len(texts))]})
			}
			ep.Transcripts = append(ep.Transcripts, tr)
		}
		res.Targets = append(res.Targets, audit.TargetResult{Target: host, Kind: "address", Verdict: audit.VerdictOpen, Endpoints: []audit.EndpointResult{ep}})
	}
	b.Audits = []AuditRun{{Purpose: "audit", Result: res}}
	b.Log = []LogEntry{{Time: t0, Step: "audit", Message: fmt.Sprintf("%d targets", n)}}
	return b
}

func encodeCases() map[string]*Bundle {
	empty := New(t0)
	emptySlices := New(t0)
	emptySlices.Audits, emptySlices.Inspections, emptySlices.Plans = []AuditRun{}, []remediate.Inspection{}, []remediate.Plan{}
	emptySlices.Backups, emptySlices.Changes, emptySlices.Artifacts, emptySlices.Log = []BackupRef{}, []remediate.ChangeRecord{}, []Artifact{}, []LogEntry{}
	noTargets := sample()
	noTargets.Audits = append(noTargets.Audits, AuditRun{Purpose: "retest", Host: "h", Result: &audit.Result{Start: t0, Targets: []audit.TargetResult{}}},
		AuditRun{Purpose: "audit", Result: &audit.Result{Start: t0}}, AuditRun{Purpose: "audit"})
	full := sample()
	full.Plans = []remediate.Plan{{Host: "mx"}}
	full.Backups = []BackupRef{{File: "b.json", SHA256: "00"}}
	full.Artifacts = []Artifact{{Name: "r.pdf", Created: t0}}
	full.Log = []LogEntry{{Time: t0, Step: "audit", Message: "<&>"}}
	cases := map[string]*Bundle{"empty": empty, "empty slices": emptySlices, "no targets": noTargets, "full": full, "big": bigBundle(20)}
	if data, err := os.ReadFile("../testdata/fixture.evidence.json"); err == nil {
		if b, err := Parse(data); err == nil {
			cases["fixture"] = b
		}
	}
	return cases
}

// TestEncodeMatchesEncoder: Marshal and Save write the same bytes, with
// the same seal, as the encoder and reference hash they replace.
func TestEncodeMatchesEncoder(t *testing.T) {
	cases := encodeCases()
	if _, ok := cases["fixture"]; !ok {
		t.Fatal("fixture evidence missing or unparsable")
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			want := oldMarshal(t, b)
			got, err := Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				i := 0
				for i < len(got) && i < len(want) && got[i] == want[i] {
					i++
				}
				t.Fatalf("Marshal differs from the encoder at byte %d:\n got …%s\nwant …%s", i, got[max(0, i-80):min(len(got), i+80)], want[max(0, i-80):min(len(want), i+80)])
			}
			p := filepath.Join(t.TempDir(), "ev.json")
			if err := Save(p, b); err != nil {
				t.Fatal(err)
			}
			if saved, _ := os.ReadFile(p); !bytes.Equal(saved, want) {
				t.Fatal("Save wrote different bytes")
			}
			if _, r, err := CheckFile(p); err != nil || len(r.Problems) != 0 {
				t.Fatalf("saved file does not verify: %v %q", err, r.Problems)
			}
			in, err := Compute(b)
			if err != nil || in.Digest != b.Integrity.Digest || in.Manifest != b.Integrity.Manifest {
				t.Fatalf("Compute %+v differs from the seal %+v (%v)", in, b.Integrity, err)
			}
		})
	}
}

// TestFixtureDigestUnchanged: the committed fixture still verifies and its
// recorded digest is what this build computes.
func TestFixtureDigestUnchanged(t *testing.T) {
	b, r, err := CheckFile("../testdata/fixture.evidence.json")
	if err != nil || len(r.Problems) != 0 {
		t.Fatalf("fixture: %v %q", err, r.Problems)
	}
	if r.Digest != b.Integrity.Digest {
		t.Fatalf("digest %s, recorded %s", r.Digest, b.Integrity.Digest)
	}
}

func TestIndenterMatchesIndent(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		var sb strings.Builder
		randJSON(r, &sb, 0)
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(sb.String())); err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		json.Indent(&want, compact.Bytes(), "", "  ")
		var got bytes.Buffer
		ind := newIndenter(&got)
		// Feed it in random pieces: state carries over.
		src := compact.Bytes()
		for len(src) > 0 {
			k := 1 + r.IntN(len(src))
			ind.Write(src[:k])
			src = src[k:]
		}
		ind.flush()
		if got.String() != want.String() {
			t.Fatalf("indent of %s:\n got %s\nwant %s", compact.Bytes(), got.Bytes(), want.Bytes())
		}
	}
}

// BenchmarkSave1000 writes a 1000-host audit (the bench's size). Run with
// -benchmem; BenchmarkSave1000/old is the previous implementation.
func BenchmarkSave1000(b *testing.B) {
	bundle := bigBundle(1000)
	dir := b.TempDir()
	b.Run("new", func(b *testing.B) {
		for b.Loop() {
			if err := Save(filepath.Join(dir, "ev.json"), bundle); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("old", func(b *testing.B) {
		for b.Loop() {
			data := oldMarshal(b, bundle)
			if err := os.WriteFile(filepath.Join(dir, "old.json"), data, 0o600); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestSavePeakMemory measures, in a child process, the peak RSS of saving
// a 1000-host audit with the new and the old code, and logs it. It runs
// only when RELAYLOCK_MEASURE=1 (it takes a few seconds and much memory).
func TestSavePeakMemory(t *testing.T) {
	if mode := os.Getenv("RELAYLOCK_SAVE_CHILD"); mode != "" {
		b := bigBundle(1000)
		runtime.GC()
		base := vmHWM()
		start := time.Now()
		p := filepath.Join(t.TempDir(), "ev.json")
		if mode == "new" {
			if err := Save(p, b); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(p, oldMarshal(t, b), 0o600); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		fmt.Printf("RESULT %s: file %d MB, write %v, VmHWM before %d MB, after %d MB\n", mode, fi.Size()>>20, time.Since(start).Round(time.Millisecond), base>>10, vmHWM()>>10)
		return
	}
	if os.Getenv("RELAYLOCK_MEASURE") == "" || runtime.GOOS != "linux" {
		t.Skip("set RELAYLOCK_MEASURE=1 (Linux) to measure")
	}
	for _, mode := range []string{"new", "old"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSavePeakMemory$", "-test.v")
		cmd.Env = append(os.Environ(), "RELAYLOCK_SAVE_CHILD="+mode)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "RESULT") {
				t.Log(l)
			}
		}
	}
}

// vmHWM is the process's peak RSS in kB (Linux).
func vmHWM() int {
	data, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// TestUpdateRefusesWhatParseRefuses: Update's single strict decode
// refuses trailing data and unknown fields as Parse and checkKnownFields
// do.
func TestUpdateRefusesWhatParseRefuses(t *testing.T) {
	good, err := Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		data []byte
		want error
	}{
		"trailing": {append(bytes.Clone(good), "x"...), ErrMalformed},
		"unknown":  {bytes.Replace(good, []byte(`"schema"`), []byte(`"new_field":1,"schema"`), 1), ErrNewerFields},
		"future":   {bytes.Replace(good, []byte(Schema), []byte("relaylock.evidence/v9"), 1), ErrFutureSchema},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "ev.json")
			if err := os.WriteFile(p, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			err := Update(context.Background(), p, func(*Bundle) error { return nil })
			if !errors.Is(err, tc.want) {
				t.Fatalf("Update: %v, want %v", err, tc.want)
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, tc.data) {
				t.Fatal("refused file was rewritten")
			}
		})
	}
	p := filepath.Join(t.TempDir(), "ev.json")
	if err := os.WriteFile(p, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Update(context.Background(), p, func(b *Bundle) error {
		b.Log = append(b.Log, LogEntry{Time: t0, Step: "report", Message: "m"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if b, r, err := CheckFile(p); err != nil || len(r.Problems) != 0 || len(b.Log) != 1 || len(b.Audits) != 1 {
		t.Fatalf("updated file: %v %q", err, r.Problems)
	}
}

// TestEncodeAuditFallback: should a later relaylock put a field after an
// audit's targets, the run is encoded whole, with the same result.
func TestEncodeAuditFallback(t *testing.T) {
	saved := targetsTail
	targetsTail = []byte("no such tail")
	defer func() { targetsTail = saved }()
	b := bigBundle(3)
	want := oldMarshal(t, b)
	got, err := Marshal(b)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("fallback encoding differs (%v)", err)
	}
}

// oldRawCompute is rawCompute as it was before it scanned the file in
// place: the reference.
func oldRawCompute(data []byte, alg string) (*Integrity, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, err
	}
	pick := func(keys ...string) ([]byte, error) {
		m := map[string]json.RawMessage{}
		for _, k := range keys {
			if v, ok := top[k]; ok {
				m[k] = v
			}
		}
		return json.Marshal(m)
	}
	in := &Integrity{Algorithm: alg}
	var content []bool
	add := func(name string, raw []byte, isContent bool) error {
		ref := refJCS
		if alg == AlgLegacy {
			ref = oldCanonical
		}
		canon, err := ref(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		sum := sha256.Sum256(canon)
		h := hex.EncodeToString(sum[:])
		in.Sections = append(in.Sections, SectionHash{Name: name, SHA256: h})
		content = append(content, isContent)
		return nil
	}
	h, err := pick("schema", "id", "created", "engagement", "tool")
	if err != nil {
		return nil, err
	}
	if err := add("header", h, true); err != nil {
		return nil, err
	}
	for _, key := range []string{"audits", "inspections", "plans", "backups", "changes", "artifacts"} {
		var elems []json.RawMessage
		if raw, ok := top[key]; ok {
			if err := json.Unmarshal(raw, &elems); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
		}
		for i, e := range elems {
			if err := add(fmt.Sprintf("%s[%d]", key, i), e, key != "artifacts"); err != nil {
				return nil, err
			}
		}
	}
	l, err := pick("updated", "log")
	if err != nil {
		return nil, err
	}
	if err := add("log", l, false); err != nil {
		return nil, err
	}
	in.Digest, in.Manifest = listHashes(in.Sections, content)
	return in, nil
}

// TestRawComputeMatchesReference: verify's hashes from the file's bytes
// are those of the reference, also for files with repeated or escaped
// keys, unknown members and other white space.
func TestRawComputeMatchesReference(t *testing.T) {
	var files [][]byte
	for _, b := range encodeCases() {
		data, err := Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		json.Compact(&compact, data)
		files = append(files, data, compact.Bytes(),
			bytes.Replace(data, []byte(`"schema"`), []byte(`"audits": null, "new": {"x": [1]}, "\u0073chema"`), 1),
			bytes.Replace(data, []byte(`"log"`), []byte(`"log": [], "log"`), 1),
			bytes.Replace(data, []byte(`"id"`), []byte(`"id": "first", "id"`), 1),
		)
	}
	for i, data := range files {
		if !json.Valid(data) {
			t.Fatalf("case %d: invalid JSON", i)
		}
		for _, alg := range []string{AlgJCS, AlgLegacy} {
			want, werr := oldRawCompute(data, alg)
			got, err := rawCompute(data, alg)
			if werr != nil || err != nil {
				t.Fatalf("case %d %s: %v / reference %v", i, alg, err, werr)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("case %d %s: rawCompute\n%+v\nreference\n%+v", i, alg, got, want)
			}
		}
	}
}
