package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/audit/smtptest"
	"github.com/relaylock/relaylock/report/evidence"
)

// A --targets run interrupted mid-way keeps every finished target in the
// journal; --resume probes only the rest (counted in server sessions) and
// merges everything into one audit run in the evidence.
func TestAuditTargetsResume(t *testing.T) {
	const n = 6
	srvs := make([]*smtptest.Server, n)
	var csv strings.Builder
	csv.WriteString("client,domain,winrm\n")
	for i := range srvs {
		p := smtptest.Closed554()
		if i == 0 {
			p = smtptest.Open()
		}
		p.Delay = 3 * time.Millisecond
		srvs[i] = smtptest.Start(t, p)
		fmt.Fprintf(&csv, "Client %d,%s,win%d.example.com # target %d\n", i, srvs[i].Addr(), i, i)
	}
	dir := t.TempDir()
	tf, ev := filepath.Join(dir, "targets.csv"), filepath.Join(dir, "ev.json")
	if err := os.WriteFile(tf, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	jp := journalPath(ev)
	args := []string{"relaylock", "audit", "--targets", tf, "--evidence", ev, "--mail-domain", "example.com",
		"--helo", "probe.example.net", "--concurrency", "1"}
	runCmd := func(ctx context.Context, extra ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		e := &env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
		code := run(ctx, append(append([]string{}, args...), extra...), e)
		return code, stdout.String() + stderr.String()
	}
	sessions := func() []int {
		out := make([]int, n)
		for i, s := range srvs {
			out[i] = len(s.Sessions())
		}
		return out
	}

	// Run 1: cancel once two targets are journaled.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ctx.Err() == nil {
			st, err := scanJournal(jp, nil)
			if err == nil && len(st.Done) >= 2 {
				cancel()
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	code, out := runCmd(ctx)
	cancel()
	if code != exitCancelled || !strings.Contains(out, "--resume") {
		t.Fatalf("interrupted run: exit %d\n%s", code, out)
	}
	st, err := scanJournal(jp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Done) < 2 || len(st.Done) == n {
		t.Fatalf("journal holds %d of %d targets", len(st.Done), n)
	}
	if b, err := evidence.Load(ev); err == nil && len(b.Audits) > 0 {
		t.Fatal("an interrupted run wrote an audit to the evidence")
	}
	// Without --resume the journal is not overwritten.
	if code, out := runCmd(context.Background()); code != exitUsage || !strings.Contains(out, "--resume") {
		t.Fatalf("rerun without --resume: exit %d\n%s", code, out)
	}
	before := sessions()

	// Run 2: --resume.
	code, out = runCmd(context.Background(), "--resume")
	if code != exitOpen {
		t.Fatalf("resume: exit %d\n%s", code, out)
	}
	after := sessions()
	for i := range srvs {
		switch {
		case st.Done[i] && after[i] != before[i]:
			t.Errorf("target %d was done before the interruption, yet probed again (%d → %d sessions)", i, before[i], after[i])
		case !st.Done[i] && after[i] == before[i]:
			t.Errorf("target %d was not done, and the resumed run did not probe it", i)
		}
	}
	if _, err := os.Stat(jp); !os.IsNotExist(err) {
		t.Errorf("journal not removed after the merge: %v", err)
	}
	b, err := evidence.Load(ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Audits) != 1 {
		t.Fatalf("%d audit runs, want 1", len(b.Audits))
	}
	res := b.Audits[0].Result
	if len(res.Targets) != n || res.Verdict != "open" || len(res.Vantage.SourceAddrs) == 0 {
		t.Fatalf("%d targets, verdict %s, vantage %v", len(res.Targets), res.Verdict, res.Vantage.SourceAddrs)
	}
	for i, tr := range res.Targets {
		want := "closed"
		if i == 0 {
			want = "open"
		}
		if tr.Target != srvs[i].Addr() || string(tr.Verdict) != want || tr.Client != fmt.Sprintf("Client %d", i) ||
			tr.WinRMHost != fmt.Sprintf("win%d.example.com", i) {
			t.Errorf("target %d: %s %s client %q winrm %q", i, tr.Target, tr.Verdict, tr.Client, tr.WinRMHost)
		}
		if len(tr.Endpoints) != 1 || len(tr.Endpoints[0].Tests) == 0 || len(tr.Endpoints[0].Transcripts) == 0 {
			t.Errorf("target %d: the evidence lacks its tests or transcripts", i)
		}
	}
	if _, cr, err := evidence.CheckFile(ev); err != nil || len(cr.Problems) > 0 {
		t.Fatalf("evidence check: %v %v", err, cr)
	}
	if !strings.Contains(b.Log[len(b.Log)-1].Message, "resumed") {
		t.Errorf("log %q", b.Log[len(b.Log)-1].Message)
	}
	if code, out := runCmd(context.Background(), "--resume"); code != exitUsage || !strings.Contains(out, "no journal") {
		t.Fatalf("second --resume: exit %d\n%s", code, out)
	}
}

// A journal with a torn last line (a crash mid-write) still resumes.
func TestJournalTornTail(t *testing.T) {
	dir := t.TempDir()
	jp := filepath.Join(dir, "ev.json.journal")
	entries := []targetEntry{{Line: 1, Target: "a.example"}, {Line: 2, Target: "b.example"}}
	w, err := openJournal(jp, &journalHeader{Journal: journalSchema, Targets: 2, TargetsSHA256: targetsDigest(entries)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.add(1, auditTarget("b.example"))
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(jp, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"i":0,"target":{"tar`)
	f.Close()
	st, err := scanJournal(jp, nil)
	if err != nil || len(st.Done) != 1 || !st.Done[1] {
		t.Fatalf("%v %+v", err, st)
	}
	w, err = openJournal(jp, nil, st.Valid)
	if err != nil {
		t.Fatal(err)
	}
	w.add(0, auditTarget("a.example"))
	w.close()
	st, err = scanJournal(jp, nil)
	if err != nil || len(st.Done) != 2 {
		t.Fatalf("after resume: %v %+v", err, st)
	}
	// A complete but garbled last line (zeros after a power loss) is cut too.
	f, _ = os.OpenFile(jp, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("\x00\x00\x00\n")
	f.Close()
	st, err = scanJournal(jp, nil)
	if err != nil || len(st.Done) != 2 {
		t.Fatalf("garbled tail: %v %+v", err, st)
	}
	if fi, _ := os.Stat(jp); st.Valid != fi.Size()-4 {
		t.Fatalf("valid %d of %d bytes", st.Valid, fi.Size())
	}
	// A garbled line before the last is an error, not silently skipped.
	os.WriteFile(jp+"2", []byte(`{"journal":"relaylock.audit-journal/v1","targets":2}`+"\n"+"garbage\n"+`{"i":1,"target":{}}`+"\n"), 0o600)
	if _, err := scanJournal(jp+"2", nil); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("garbled middle line: %v", err)
	}
	if _, err := scanJournal(filepath.Join(dir, "missing"), nil); err == nil {
		t.Fatal("no error for a missing journal")
	}
	if fi, _ := os.Stat(jp); fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode %v", fi.Mode().Perm())
	}
}

func auditTarget(name string) audit.TargetResult {
	return audit.TargetResult{Target: name, Kind: "domain", Verdict: audit.VerdictClosed, Endpoints: []audit.EndpointResult{}}
}
