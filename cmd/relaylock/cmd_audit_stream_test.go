package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/audit/smtptest"
)

// --format json streams one Result document (in the targets' order, with
// the CSV's client and WinRM host on each target); --format jsonl writes
// the same targets one per line; both exit 3 when one is open.
func TestAuditStreamedFormats(t *testing.T) {
	var csv strings.Builder
	csv.WriteString("client,domain,winrm\n")
	var addrs []string
	for i := range 9 {
		p := smtptest.Closed554()
		if i%4 == 1 {
			p = smtptest.Open()
		}
		a := smtptest.Start(t, p).Addr()
		addrs = append(addrs, a)
		fmt.Fprintf(&csv, "Client %d,%s,win%d.example.com\n", i, a, i)
	}
	tf := filepath.Join(t.TempDir(), "targets.csv")
	if err := os.WriteFile(tf, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	runFormat := func(format string) []audit.TargetResult {
		var stdout, stderr bytes.Buffer
		e := &env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
		code := run(context.Background(), []string{"relaylock", "audit", "--targets", tf, "--format", format,
			"--mail-domain", "example.com", "--helo", "probe.example.net"}, e)
		if code != exitOpen {
			t.Fatalf("--format %s: exit %d, want %d\n%s", format, code, exitOpen, stderr.String())
		}
		if format == "json" {
			var r audit.Result
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
				t.Fatalf("stdout is not a Result: %v\n%s", err, stdout.String())
			}
			if r.Verdict != audit.VerdictOpen || r.End.IsZero() || r.Options.Depth != audit.DepthData {
				t.Fatalf("document fields: verdict %s, end %s, options %+v", r.Verdict, r.End, r.Options)
			}
			return r.Targets
		}
		var out []audit.TargetResult
		sc := bufio.NewScanner(&stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var tr audit.TargetResult
			if err := json.Unmarshal(sc.Bytes(), &tr); err != nil {
				t.Fatalf("jsonl line %d: %v", len(out)+1, err)
			}
			out = append(out, tr)
		}
		return out
	}
	for _, format := range []string{"json", "jsonl"} {
		ts := runFormat(format)
		if len(ts) != len(addrs) {
			t.Fatalf("--format %s: %d targets, want %d", format, len(ts), len(addrs))
		}
		for i, tr := range ts {
			want := audit.VerdictClosed
			if i%4 == 1 {
				want = audit.VerdictOpen
			}
			if tr.Target != addrs[i] || tr.Verdict != want || tr.Client != fmt.Sprintf("Client %d", i) ||
				tr.WinRMHost != fmt.Sprintf("win%d.example.com", i) || len(tr.Endpoints) != 1 || len(tr.Endpoints[0].Transcripts) == 0 {
				t.Fatalf("--format %s target %d: %s %s client %q winrm %q, %d endpoints", format, i, tr.Target, tr.Verdict, tr.Client, tr.WinRMHost, len(tr.Endpoints))
			}
		}
	}
	var stdout, stderr bytes.Buffer
	e := &env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	if code := run(context.Background(), []string{"relaylock", "audit", "--format", "xml", addrs[0]}, e); code != exitUsage {
		t.Fatalf("--format xml: exit %d, want %d", code, exitUsage)
	}
}
