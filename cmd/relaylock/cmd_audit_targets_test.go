package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	jp := ev + ".journal"
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
			done, err := journalDone(jp)
			if err == nil && len(done) >= 2 {
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
	done, err := journalDone(jp)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) < 2 || len(done) == n {
		t.Fatalf("journal holds %d of %d targets", len(done), n)
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
		case done[i] && after[i] != before[i]:
			t.Errorf("target %d was done before the interruption, yet probed again (%d → %d sessions)", i, before[i], after[i])
		case !done[i] && after[i] == before[i]:
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

// journalDone reads the indices of the finished targets from the journal
// beside the evidence (README "Large audits": one JSON record per line
// after the header, each with the target's index "i").
func journalDone(path string) (map[int]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	done := map[int]bool{}
	for n, line := range strings.Split(string(b), "\n") {
		var rec struct {
			I *int `json:"i"`
		}
		if n == 0 || json.Unmarshal([]byte(line), &rec) != nil || rec.I == nil {
			continue // the header, or a line being written
		}
		done[*rec.I] = true
	}
	return done, nil
}
