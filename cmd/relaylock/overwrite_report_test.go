package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/report/evidence"
)

// TestReportNeverReplacesEvidenceFiles (tryout finding 8): report -o
// refuses the evidence (also through a link), its signature, the signing
// key and a backup the evidence records, and leaves them as they were;
// rendering the report again in place still works; with
// --accept-modified the recorded report is not replaced either.
func TestReportNeverReplacesEvidenceFiles(t *testing.T) {
	dir := t.TempDir()
	ev := copyFixture(t, dir)
	key := filepath.Join(dir, "k")
	if code, _, errOut := runCLI(t, "", "keygen", "-o", key); code != exitOK {
		t.Fatalf("keygen: %s", errOut)
	}
	// The fixture records backup-mx1.json beside the evidence.
	bk := filepath.Join(dir, "backup-mx1.json")
	if err := os.WriteFile(bk, []byte(`{"backup":"of mx1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := evidence.Load(ev)
	if err != nil {
		t.Fatal(err)
	}
	b.Backups[0].SHA256 = fileSHA256(t, bk) // so that the evidence verifies
	if err := evidence.Save(ev, b); err != nil {
		t.Fatal(err)
	}
	sig := ev + ".sig.json"
	if err := os.WriteFile(sig, []byte(`{"a signature":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	protect := map[string]string{"backup": bk, "signature": sig, "key": key, "evidence": ev}
	if runtime.GOOS != "windows" {
		link := filepath.Join(dir, "ev-link.json")
		if err := os.Symlink(ev, link); err != nil {
			t.Fatal(err)
		}
		protect["link to the evidence"] = link
		// A second name for the backup (a hard link) is the same file.
		hard := filepath.Join(dir, "hard.json")
		if err := os.Link(bk, hard); err != nil {
			t.Fatal(err)
		}
		protect["hard link to the backup"] = hard
	}
	snapshot := func() map[string][]byte {
		m := map[string][]byte{}
		for _, p := range []string{ev, bk, sig, key} {
			m[p], _ = os.ReadFile(p)
		}
		return m
	}
	before := snapshot()
	for what, p := range protect {
		code, out, errOut := runCLI(t, "", "report", "--evidence", ev, "-o", p, "--sign-key", key)
		if code != exitUsage || !strings.Contains(errOut, "refusing to replace") && !strings.Contains(errOut, "would overwrite the evidence") {
			t.Errorf("report -o %s (%s): exit %d, want %d refusing\nstdout:\n%s\nstderr:\n%s", p, what, code, exitUsage, out, errOut)
		}
	}
	for p, b := range snapshot() {
		if !bytes.Equal(b, before[p]) {
			t.Errorf("%s was changed", p)
		}
	}
	// Rendering again over the recorded report is how it is brought up to
	// date.
	pdf := filepath.Join(dir, "report.pdf")
	for i := range 2 {
		if code, out, errOut := runCLI(t, "", "report", "--evidence", ev, "-o", pdf); code != exitOK {
			t.Fatalf("report %d: exit %d\n%s\n%s", i, code, out, errOut)
		}
	}
	good, _ := os.ReadFile(pdf)
	forgeInspection(t, ev)
	code, out, errOut := runCLI(t, "", "report", "--evidence", ev, "-o", pdf, "--accept-modified")
	if code != exitUsage || !strings.Contains(errOut, "must not take its place") {
		t.Errorf("report --accept-modified over the recorded report: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitUsage, out, errOut)
	}
	if b, _ := os.ReadFile(pdf); !bytes.Equal(b, good) {
		t.Error("the report rendered from sealed evidence was replaced by one of modified evidence")
	}
	if code, _, errOut := runCLI(t, "", "report", "--evidence", ev, "-o", filepath.Join(dir, "modified.pdf"), "--accept-modified"); code != exitOK {
		t.Errorf("report --accept-modified to a new file: exit %d\n%s", code, errOut)
	}
}
