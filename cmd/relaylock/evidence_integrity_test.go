package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit/smtptest"
	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/report"
	"github.com/relaylock/relaylock/report/evidence"
)

// forgeInspection changes an allow-list value in inspections[1] of the
// fixture evidence at p, as in issue 15 item 1, and returns the bytes.
func forgeInspection(t *testing.T, p string) []byte {
	t.Helper()
	data, _ := os.ReadFile(p)
	at := bytes.Index(data, []byte(`"inspections": [`))
	old := []byte(`"AnonymousUsers, ExchangeServers"`)
	i := bytes.Index(data[at:], old)
	if at < 0 || i < 0 {
		t.Fatal("fixture changed: no PermissionGroups value in inspections")
	}
	forged := append(bytes.Clone(data[:at+i]), `"ExchangeServers"`...)
	forged = append(forged, data[at+i+len(old):]...)
	if err := os.WriteFile(p, forged, 0o600); err != nil {
		t.Fatal(err)
	}
	return forged
}

// TestReportRefusesModifiedEvidence: report verifies first. Forged
// evidence is refused with verify's output and left as it is; with
// --accept-modified it is rendered with the banner on every page, naming
// the section, and still never re-sealed (issue 15 item 1).
func TestReportRefusesModifiedEvidence(t *testing.T) {
	dir := t.TempDir()
	ev := copyFixture(t, dir)
	pdf := filepath.Join(dir, "x.pdf")
	forged := forgeInspection(t, ev)

	code, out, stderr := runCLI(t, "", "report", "--evidence", ev, "-o", pdf)
	if code != exitError || !strings.Contains(stderr, "MISMATCH  inspections[1]") || !strings.Contains(stderr, "modified after sealing") {
		t.Fatalf("report of forged evidence: exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	if _, err := os.Stat(pdf); err == nil {
		t.Error("a PDF was rendered from forged evidence")
	}
	if got, _ := os.ReadFile(ev); !bytes.Equal(got, forged) {
		t.Fatal("forged evidence was rewritten")
	}

	if code, _, _ := runCLI(t, "", "report", "--evidence", ev, "-o", pdf, "--accept-modified", "--sign-key", filepath.Join(dir, "k")); code != exitUsage {
		t.Errorf("--accept-modified with --sign-key: exit %d, want %d", code, exitUsage)
	}
	code, out, stderr = runCLI(t, "", "report", "--evidence", ev, "-o", pdf, "--accept-modified")
	if code != exitOK || !strings.Contains(out, "MODIFIED") {
		t.Fatalf("--accept-modified: exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	if got, _ := os.ReadFile(ev); !bytes.Equal(got, forged) {
		t.Fatal("--accept-modified re-sealed or rewrote the evidence")
	}
	if code, out, _ := runCLI(t, "", "verify", ev); code != exitError || !strings.Contains(out, "MISMATCH  inspections[1]") {
		t.Errorf("verify after --accept-modified: exit %d\n%s", code, out)
	}
	needTool(t, "pdftotext")
	pages := strings.Split(strings.TrimRight(pdfText(t, pdf), "\f\n"), "\f")
	if len(pages) < 5 {
		t.Fatalf("%d pages", len(pages))
	}
	for i, pg := range pages {
		if !strings.Contains(pg, report.ModifiedBanner) || !strings.Contains(pg, "inspections[1]") {
			t.Errorf("page %d lacks the banner naming inspections[1]:\n%.300s", i+1, pg)
		}
	}
}

// TestReportRefusesCaseVariantKey: the attack of issue 15 item 2, a
// "Result": null after "result" in audits[0], which verify passed and
// report rendered as "No open relay found", is refused by both.
func TestReportRefusesCaseVariantKey(t *testing.T) {
	dir := t.TempDir()
	ev := copyFixture(t, dir)
	data, _ := os.ReadFile(ev)
	forged := bytes.Replace(data, []byte(`"purpose": "audit",`), []byte(`"purpose": "audit", "Result": null,`), 1)
	os.WriteFile(ev, forged, 0o600)
	for _, args := range [][]string{{"verify", ev}, {"report", "--evidence", ev, "-o", filepath.Join(dir, "x.pdf")}, {"report", "--accept-modified", "--evidence", ev, "-o", filepath.Join(dir, "x.pdf")}} {
		code, out, stderr := runCLI(t, "", args...)
		if code != exitError || !strings.Contains(stderr, "malformed evidence file") || !strings.Contains(stderr, `"Result"`) {
			t.Errorf("%v: exit %d\nstdout %s\nstderr %s", args, code, out, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.pdf")); err == nil {
		t.Error("a report was rendered")
	}
}

// auditFixture serves one SMTP server for example.com and returns the
// audit arguments that probe it.
func auditFixture(t *testing.T, open bool) []string {
	t.Helper()
	srv := smtptest.Closed554()
	if open {
		srv = smtptest.Open()
	}
	addr := smtptest.Serve(t, srv)
	resolveExampleMX(t)
	return []string{"audit", "--ports", addr[strings.LastIndex(addr, ":")+1:], "--helo", "probe.example.net", "--probe-domain", "example.net"}
}

// TestWritersRefuseModifiedEvidence: a command that adds to evidence
// checks it before it probes: forged evidence, and a lock held by a live
// run, are refused at once with exit 1 (issue 15 items 1 and 4).
func TestWritersRefuseModifiedEvidence(t *testing.T) {
	dir := t.TempDir()
	ev := copyFixture(t, dir)
	forged := forgeInspection(t, ev)
	args := append(auditFixture(t, true), "--evidence", ev, "example.com")
	code, out, stderr := runCLI(t, "", args...)
	if code != exitError || out != "" || !strings.Contains(stderr, "MISMATCH  inspections[1]") {
		t.Fatalf("audit into forged evidence: exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	if got, _ := os.ReadFile(ev); !bytes.Equal(got, forged) {
		t.Fatal("forged evidence was re-sealed by audit")
	}
	// Every command that adds to evidence checks it before anything else.
	for _, cmd := range [][]string{{"inspect"}, {"remediate"}, {"rollback", "--backup", "b.json"}, {"fix"}} {
		code, out, stderr := runCLI(t, "", append(cmd, "--evidence", ev)...)
		if code != exitError || !strings.Contains(stderr, "MISMATCH  inspections[1]") {
			t.Errorf("%s into forged evidence: exit %d\nstdout %s\nstderr %s", cmd, code, out, stderr)
		}
	}
	if got, _ := os.ReadFile(ev); !bytes.Equal(got, forged) {
		t.Fatal("forged evidence was rewritten")
	}

	ev2 := filepath.Join(dir, "locked.json")
	os.WriteFile(ev2+".lock", []byte("pid 4242 host other-host.example since 2026-01-01T00:00:00Z\n"), 0o600)
	start := time.Now()
	code, out, stderr = runCLI(t, "", append(auditFixture(t, true), "--evidence", ev2, "example.com")...)
	if code != exitError || out != "" || !strings.Contains(stderr, "pid 4242 on host other-host.example") {
		t.Fatalf("audit into locked evidence: exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("refusing a held lock took %s", d)
	}
}

// TestAuditResultSurvivesEvidenceFailure: when the evidence cannot be
// written at the end of a run (the file truncated, its lock taken by
// another host), the result still reaches stdout, the write error goes
// to stderr, and the exit code is 3 for an open relay, 6 otherwise
// (issue 15 item 4).
func TestAuditResultSurvivesEvidenceFailure(t *testing.T) {
	old := evidence.LockWait
	evidence.LockWait = 200 * time.Millisecond
	defer func() { evidence.LockWait = old }()
	breaks := map[string]func(path string){
		"truncated": func(p string) {
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)/2], 0o600)
		},
		"locked by another host": func(p string) {
			os.WriteFile(p+".lock", []byte("pid 4242 host other-host.example since 2026-01-01T00:00:00Z\n"), 0o600)
		},
	}
	for name, breakIt := range breaks {
		for _, open := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s open=%v", name, open), func(t *testing.T) {
				dir := t.TempDir()
				ev := copyFixture(t, dir)
				before, _ := os.ReadFile(ev)
				beforeEvidenceWrite = breakIt
				defer func() { beforeEvidenceWrite = nil }()
				code, out, stderr := runCLI(t, "", append(auditFixture(t, open), "--evidence", ev, "example.com")...)
				want, verdict := exitEvidence, "CLOSED"
				if open {
					want, verdict = exitOpen, "OPEN"
				}
				if code != want || !strings.Contains(out, verdict) || !strings.Contains(stderr, "NOT in the evidence file") {
					t.Fatalf("exit %d (want %d)\nstdout %s\nstderr %s", code, want, out, stderr)
				}
				if name == "locked by another host" {
					if !strings.Contains(stderr, "other-host.example") {
						t.Errorf("the error does not name the holder: %s", stderr)
					}
					if got, _ := os.ReadFile(ev); !bytes.Equal(got, before) {
						t.Error("evidence changed although locked")
					}
				}
			})
		}
	}
}

// TestInspectResultSurvivesEvidenceFailure: an inspection whose evidence
// cannot be written is printed all the same: exit 3 for an open finding,
// 6 for a closed host (issue 15 item 4).
func TestInspectResultSurvivesEvidenceFailure(t *testing.T) {
	old := evidence.LockWait
	evidence.LockWait = 100 * time.Millisecond
	defer func() { evidence.LockWait = old }()
	for _, tc := range []struct {
		host lab.Host
		code int
		want string
	}{{lab.NewIIS(lab.IISAllExceptEmpty), exitOpen, "IIS-RELAY-ALL-EXCEPT-EMPTY"}, {lab.NewIIS(lab.IISClosed), exitEvidence, "IIS-RELAY-RESTRICTED"}} {
		lr := startLab(t, tc.host)
		ev := filepath.Join(lr.dir, "ev.json")
		beforeEvidenceWrite = func(p string) {
			os.WriteFile(p+".lock", []byte("pid 4242 host other-host.example since 2026-01-01T00:00:00Z\n"), 0o600)
		}
		code, out, stderr := lr.run(labTestPassword, append([]string{"inspect", "--prober", "198.51.100.7", "--evidence", ev}, lr.winrmArgs()...)...)
		beforeEvidenceWrite = nil
		if code != tc.code || !strings.Contains(out, tc.want) || !strings.Contains(stderr, "NOT in the evidence file") {
			t.Errorf("exit %d (want %d)\nstdout %s\nstderr %s", code, tc.code, out, stderr)
		}
	}
}

// TestRemediateCarriesOnWhenEvidenceFails: once the change has begun, an
// evidence write that fails does not stop the remediation: the read-back,
// the re-test and the rollback command are printed, each missing record
// is named on stderr, and the exit code is 6 (issue 15 item 4). Before
// the change, the backup's record is still required.
func TestRemediateCarriesOnWhenEvidenceFails(t *testing.T) {
	old := evidence.LockWait
	evidence.LockWait = 100 * time.Millisecond
	defer func() { evidence.LockWait = old }()
	for _, failFrom := range []int{2, 4} { // the plan's write, the apply's write
		h := lab.NewIIS(lab.IISAllExceptEmpty)
		lr := startLab(t, h)
		ev, bk := filepath.Join(lr.dir, "ev.json"), filepath.Join(lr.dir, "backup.json")
		calls := 0
		beforeEvidenceWrite = func(p string) {
			if calls++; calls >= failFrom {
				os.WriteFile(p+".lock", []byte("pid 4242 host other-host.example since 2026-01-01T00:00:00Z\n"), 0o600)
			}
		}
		args := append(append([]string{"remediate", "--allow", "127.0.0.2", "--no-loopback", "--yes", "--restart", "never",
			"--evidence", ev, "--backup", bk}, lr.winrmArgs()...), lr.probeArgs()...)
		code, out, stderr := lr.run(labTestPassword, args...)
		beforeEvidenceWrite = nil
		os.Remove(ev + ".lock")
		if failFrom == 2 {
			if code != exitError || strings.Contains(out, "rollback command") || !h.RelayAllowed(netip.MustParseAddr("198.51.100.7"), false, "elsewhere.example") {
				t.Errorf("plan not recorded: exit %d, want %d and no change\nstdout %s\nstderr %s", code, exitError, out, stderr)
			}
			continue
		}
		if code != exitEvidence || !strings.Contains(out, "rollback command") || !strings.Contains(out, "after closed") ||
			!strings.Contains(stderr, "the apply record of") || !strings.Contains(stderr, "the retest of") {
			t.Errorf("exit %d (want %d)\nstdout %s\nstderr %s", code, exitEvidence, out, stderr)
		}
		b, _, err := evidence.LoadVerified(ev)
		if err != nil || len(b.Backups) != 1 {
			t.Errorf("evidence: %v (the backup must be recorded before the change)", err)
		}
	}
}

// TestReportFromJCSEvidence: evidence started by this version is sealed
// with RFC 8785; its report re-renders byte for byte from the final file,
// and the digest the report prints is the one verify prints.
func TestReportFromJCSEvidence(t *testing.T) {
	dir := t.TempDir()
	ev, pdf := filepath.Join(dir, "ev.json"), filepath.Join(dir, "r.pdf")
	if code, out, stderr := runCLI(t, "", append(auditFixture(t, true), "--evidence", ev, "example.com")...); code != exitOpen {
		t.Fatalf("audit: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr := runCLI(t, "", "report", "--evidence", ev, "-o", pdf)
	if code != exitOK {
		t.Fatalf("report: exit %d\n%s%s", code, out, stderr)
	}
	b, r, err := evidence.LoadVerified(ev)
	if err != nil || b.Integrity.Algorithm != evidence.AlgJCS {
		t.Fatalf("evidence: %v %+v", err, b.Integrity)
	}
	if !strings.Contains(out, "digest:   "+r.Digest) {
		t.Errorf("report printed another digest than verify's %s:\n%s", r.Digest, out)
	}
	var again bytes.Buffer
	if err := report.Render(&again, b, report.Options{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(pdf); !bytes.Equal(got, again.Bytes()) {
		t.Error("re-rendering the final evidence gave different bytes")
	}
}
