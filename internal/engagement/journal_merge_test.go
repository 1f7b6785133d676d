package engagement

import (
	"bytes"
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
	"github.com/relaylock/relaylock/internal/heapwatch"
	"github.com/relaylock/relaylock/report/evidence"
)

var mergeT0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// journalTarget is target i as a probe would journal it: one endpoint
// with tests and transcripts (about 25 KB of JSON), hostile text included;
// every 10th is open.
func journalTarget(i int) audit.TargetResult {
	r := rand.New(rand.NewPCG(uint64(i), 16))
	texts := []string{"250 OK", "RCPT TO:<\"x@y\"@example.net>", "550 5.7.1 Unable to relay", "220 mx \u2028 ready", "bad utf8 \ufffd", "tab\there", "<&>"}
	host := fmt.Sprintf("127.0.%d.%d", i/250, i%250+1)
	v := audit.VerdictClosed
	if i%10 == 0 {
		v = audit.VerdictOpen
	}
	ep := audit.EndpointResult{MXHost: "mx" + strconv.Itoa(i) + ".example.com", Address: host, Port: 25, TLS: "none", Verdict: v,
		Banner: "220 " + host + " ESMTP", Extensions: []string{"PIPELINING", "SIZE 0"}, Connections: 1, RoundTrips: 4, Commands: 60,
		Start: mergeT0, End: mergeT0.Add(time.Second)}
	if v == audit.VerdictOpen {
		ep.Triggers = []string{"R3"}
	}
	for k := range 30 {
		ep.Tests = append(ep.Tests, audit.TestResult{ID: "R" + strconv.Itoa(k), Title: "Relay test " + strconv.Itoa(k), Kind: "recipient",
			MailFrom: "<probe@example.net>", RcptTo: "<x%y@example.org>", Outcome: audit.OutcomeDenied,
			Reply: &audit.Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{texts[r.IntN(len(texts))]}}})
	}
	tr := audit.Transcript{Conn: 0, Local: fmt.Sprintf("127.0.0.%d:40000", 1+i%3), Remote: host + ":25", Start: mergeT0, End: mergeT0}
	for l := range 120 {
		tr.Lines = append(tr.Lines, audit.TranscriptLine{T: mergeT0.Add(time.Duration(l) * time.Microsecond), Dir: "CS*"[l%3 : l%3+1], Text: texts[r.IntN(len(texts))]})
	}
	ep.Transcripts = []audit.Transcript{tr}
	return audit.TargetResult{Target: "d" + strconv.Itoa(i) + ".example.com", Domain: "d" + strconv.Itoa(i) + ".example.com",
		Kind: "domain", Verdict: v, Endpoints: []audit.EndpointResult{ep}}
}

// writeTestJournal journals n targets in a shuffled order, as a run with
// many in flight finishes them, and returns the targets file's entries.
func writeTestJournal(t testing.TB, path string, n int) []targetEntry {
	t.Helper()
	entries := make([]targetEntry, n)
	for i := range entries {
		entries[i] = targetEntry{Line: i + 1, Target: "d" + strconv.Itoa(i) + ".example.com", Client: "Client <" + strconv.Itoa(i%4) + ">"}
	}
	h := &journalHeader{Journal: journalSchema, Started: mergeT0, TargetsSHA256: targetsDigest(entries), Targets: n,
		Options: audit.OptionsSummary{From: "probe@example.net", Depth: "rcpt", Ports: []int{25}}}
	w, err := openJournal(path, h, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range rand.New(rand.NewPCG(uint64(n), 1)).Perm(n) {
		tr := journalTarget(i)
		tr.Client = entries[i].Client
		w.add(i, tr)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	return entries
}

// mergedBundle is the evidence a journaled run writes, with a fixed id
// and times so that two merges compare byte for byte.
func mergedBundle(run evidence.AuditRun) *evidence.Bundle {
	b := evidence.New(mergeT0)
	b.ID = "RL-20260506-00000000"
	b.Tool = evidence.CurrentTool("1.0.0", "test")
	b.Audits = []evidence.AuditRun{run}
	b.Log = []evidence.LogEntry{{Time: mergeT0, Step: "audit", Message: "probed"}}
	return b
}

// TestMergeJournalStreamed: the evidence written while streaming the
// targets back from the journal is byte for byte the evidence written
// from the whole targets in memory (today's path, still used for the
// JSON and CSV outputs), `relaylock verify` accepts it, and so does the
// independent Python verifier. The printed result keeps each target's
// summary, verdict and client.
func TestMergeJournalStreamed(t *testing.T) {
	const n = 40
	dir := t.TempDir()
	jp := filepath.Join(dir, "ev.json.journal")
	entries := writeTestJournal(t, jp, n)
	whole, err := mergeJournal(jp, entries, nil, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	streamed, err := mergeJournal(jp, entries, nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if streamed.Targets == nil || streamed.Evidence("audit").Result.Targets != nil {
		t.Fatal("the text-output merge holds the whole targets for the evidence")
	}
	// The in-memory run holds every target, in the targets file's order.
	for i, tr := range whole.Result.Targets {
		want := journalTarget(i)
		if tr.Target != want.Target || len(tr.Endpoints[0].Transcripts[0].Lines) != 120 || tr.Client != entries[i].Client {
			t.Fatalf("whole target %d = %s (%d transcript lines, client %q)", i, tr.Target, len(tr.Endpoints[0].Transcripts[0].Lines), tr.Client)
		}
		s := streamed.Result.Targets[i]
		if s.Target != tr.Target || s.Verdict != tr.Verdict || s.Client != tr.Client || len(s.Endpoints[0].Transcripts) != 0 ||
			len(s.Endpoints[0].Tests) != len(tr.Endpoints[0].Triggers) {
			t.Fatalf("summary of target %d = %+v", i, s)
		}
	}
	if whole.Result.Verdict != audit.VerdictOpen || streamed.Result.Verdict != whole.Result.Verdict {
		t.Fatalf("verdicts %s / %s", whole.Result.Verdict, streamed.Result.Verdict)
	}
	if got := strings.Join(streamed.Result.Vantage.SourceAddrs, " "); got != "127.0.0.1 127.0.0.2 127.0.0.3" ||
		got != strings.Join(whole.Result.Vantage.SourceAddrs, " ") {
		t.Fatalf("source addresses %q", got)
	}
	streamed.Result.End, whole.Result.End = mergeT0, mergeT0
	want, err := evidence.Marshal(mergedBundle(whole.Evidence("audit")))
	if err != nil {
		t.Fatal(err)
	}
	got, err := evidence.Marshal(mergedBundle(streamed.Evidence("audit")))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("streamed evidence differs at byte %d:\n got …%s\nwant …%s", i, got[max(0, i-80):min(len(got), i+80)], want[max(0, i-80):min(len(want), i+80)])
	}
	for name, data := range map[string][]byte{"whole": want, "streamed": got} {
		p := filepath.Join(dir, name+".json")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, cr, err := evidence.CheckFile(p); err != nil || len(cr.Problems) > 0 {
			t.Fatalf("verify %s: %v %v", name, err, cr)
		}
		if py, err := exec.LookPath("python3"); err == nil {
			out, err := exec.Command(py, "../../report/evidence/testdata/verify.py", p).CombinedOutput()
			if err != nil {
				t.Fatalf("verify.py %s: %v\n%s", name, err, out)
			}
		}
	}
	// Save through the source writes the same file.
	p := filepath.Join(dir, "saved.json")
	if err := evidence.Save(p, mergedBundle(streamed.Evidence("audit"))); err != nil {
		t.Fatal(err)
	}
	if saved, _ := os.ReadFile(p); !bytes.Equal(saved, want) {
		t.Fatal("Save of the streamed run wrote different bytes")
	}
	// A consumer that stops early (the encoder on a write error) gets its
	// error back, and the readers ahead of it end.
	before := runtime.NumGoroutine()
	stop := errors.New("disk full")
	seen := 0
	err = streamed.Targets(func(tr *audit.TargetResult) error {
		if tr.Target != entries[seen].Target {
			t.Fatalf("target %d is %s", seen, tr.Target)
		}
		if seen++; seen == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || seen != 3 {
		t.Fatalf("stopped after %d targets with %v", seen, err)
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after an early stop, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A journal changed between the two reads is refused, not written.
	if err := os.WriteFile(jp, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.Marshal(mergedBundle(streamed.Evidence("audit"))); err == nil {
		t.Fatal("a journal cut short after the first read was merged")
	}
}

// TestMergeJournalHeapFlat: the merge and the evidence write for text
// output (the default) need heap for one target, not for all: their peak
// heap grows by far less per target between 200 and 2,000 targets than
// the merge with whole targets in memory (what every merge did before).
func TestMergeJournalHeapFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("writes about 60 MB of journal")
	}
	dir := t.TempDir()
	type size struct {
		n       int
		entries []targetEntry
		jp      string
	}
	sizes := []*size{{n: 200}, {n: 2000}}
	for _, s := range sizes {
		s.jp = filepath.Join(dir, strconv.Itoa(s.n)+".journal")
		s.entries = writeTestJournal(t, s.jp, s.n)
	}
	peak := func(s *size, full bool) uint64 {
		runtime.GC()
		w := heapwatch.Start(time.Millisecond)
		m, err := mergeJournal(s.jp, s.entries, nil, nil, full)
		if err == nil {
			err = evidence.Save(filepath.Join(dir, "ev.json"), mergedBundle(m.Evidence("audit")))
		}
		runtime.KeepAlive(m)
		_, growth := w.Stop()
		if err != nil {
			t.Fatal(err)
		}
		return growth
	}
	perTarget := func(full bool) float64 {
		small, large := peak(sizes[0], full), peak(sizes[1], full)
		t.Logf("full=%v: peak heap growth %d KB at %d targets, %d KB at %d", full, small>>10, sizes[0].n, large>>10, sizes[1].n)
		return float64(int64(large)-int64(small)) / float64(sizes[1].n-sizes[0].n)
	}
	streamed, whole := perTarget(false), perTarget(true)
	t.Logf("per target: %.0f B streamed, %.0f B with whole targets", streamed, whole)
	if streamed > whole/5 || streamed > 8192 {
		t.Fatalf("the streamed merge grows by %.0f B per target (whole targets: %.0f B); want at most a fifth and at most 8 KB", streamed, whole)
	}
}
