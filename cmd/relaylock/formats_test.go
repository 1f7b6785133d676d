package main

// Output formats added for issue 15 item 12: `audit --format csv` (one row
// per endpoint) and `verify --format json`.

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/audit/smtptest"
	"github.com/relaylock/relaylock/internal/engagement"
)

func TestAuditFormatCSV(t *testing.T) {
	open := smtptest.Serve(t, smtptest.Open())
	closed := smtptest.Serve(t, smtptest.Closed554())
	resolveExampleMX(t)
	var stdout, stderr bytes.Buffer
	e := &env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	code := run(context.Background(), []string{"relaylock", "audit", "--format", "csv", "--helo", "probe.example.net",
		"--mail-domain", "example.com", open, closed, "nomx.invalid"}, e)
	if code != exitOpen {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitOpen, stdout.String(), stderr.String())
	}
	rows, err := csv.NewReader(&stdout).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, stdout.String())
	}
	// The columns are a documented format (README, --format): named here,
	// not taken from the code.
	auditCSVHeader := []string{"client", "target", "kind", "mx_host", "preference", "address", "port", "tls",
		"verdict", "confirmation", "triggers", "accepted_as_local", "reason", "banner"}
	if strings.Join(rows[0], ",") != strings.Join(auditCSVHeader, ",") {
		t.Fatalf("header %q", rows[0])
	}
	col := func(row []string, name string) string {
		for i, h := range auditCSVHeader {
			if h == name {
				return row[i]
			}
		}
		t.Fatalf("no column %s", name)
		return ""
	}
	got := map[string]string{}
	for _, r := range rows[1:] {
		if len(r) != len(auditCSVHeader) {
			t.Fatalf("row %q has %d cells", r, len(r))
		}
		got[col(r, "target")] = col(r, "verdict") + "/" + col(r, "address") + ":" + col(r, "port")
	}
	_, op, _ := strings.Cut(open, ":")
	_, cp, _ := strings.Cut(closed, ":")
	want := map[string]string{open: "open/127.0.0.1:" + op, closed: "closed/127.0.0.1:" + cp, "nomx.invalid": "inconclusive/:"}
	if len(rows) != 4 {
		t.Errorf("%d rows, want a header and one per endpoint or endpoint-less target:\n%s", len(rows), stdout.String())
	}
	for k, v := range want {
		if got[k] != v && !(k == "nomx.invalid" && strings.HasSuffix(got[k], "/:")) {
			t.Errorf("row for %s = %q, want %q", k, got[k], v)
		}
	}
}

func TestVerifyFormatJSON(t *testing.T) {
	dir := t.TempDir()
	ev := copyFixture(t, dir)
	code, out, stderr := runCLI(t, "", "verify", "--format", "json", ev)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	var o engagement.VerifyOutcome
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if !o.Verified || o.Digest == "" || len(o.OK) == 0 || len(o.Problems) != 0 {
		t.Errorf("verify json = %+v", o)
	}
	// One changed byte: verified false, the section named, exit 1.
	data, err := os.ReadFile(ev)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(`"purpose": "retest"`))
	if i < 0 {
		t.Fatal("fixture has no retest")
	}
	data = bytes.Replace(data, []byte(`"purpose": "retest"`), []byte(`"purpose": "retesT"`), 1)
	if err := os.WriteFile(ev, data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "", "verify", "--format", "json", ev)
	if code != exitError {
		t.Errorf("tampered: exit %d, want %d", code, exitError)
	}
	o = engagement.VerifyOutcome{}
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("tampered: stdout is not JSON: %v\n%s", err, out)
	}
	if o.Verified || len(o.Problems) == 0 || !strings.Contains(strings.Join(o.Problems, "\n"), "audits[") {
		t.Errorf("tampered: %+v", o)
	}
	if code, _, _ := runCLI(t, "", "verify", "--format", "xml", ev); code != exitUsage {
		t.Errorf("--format xml: exit %d, want 2", code)
	}
}
