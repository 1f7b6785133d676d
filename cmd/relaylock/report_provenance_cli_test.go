package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/report/evidence"
)

// TestReportSaysOnlyWhatEvidenceSays (tryout 1): --client that differs
// from the evidence's client is a usage error naming both; for evidence
// without a client it is taken and recorded with the report; a template
// may not change verdict words; custom texts are recorded by SHA-256.
func TestReportSaysOnlyWhatEvidenceSays(t *testing.T) {
	dir := t.TempDir()
	ev := copyFixture(t, dir)
	pdf := filepath.Join(dir, "beta.pdf")
	code, out, errOut := runCLI(t, "", "report", "--evidence", ev, "-o", pdf, "--client", "Beta Corp")
	if code != exitUsage || !strings.Contains(errOut, `"Beta Corp"`) || !strings.Contains(errOut, `"Example Industries GmbH"`) {
		t.Errorf("conflicting --client: exit %d, want %d naming both\n%s\n%s", code, exitUsage, out, errOut)
	}
	if _, err := os.Stat(pdf); err == nil {
		t.Error("a PDF was written with a client the evidence does not name")
	}

	// Evidence without a client: the name is taken and recorded.
	b, err := evidence.Load(ev)
	if err != nil {
		t.Fatal(err)
	}
	b.Engagement.Client = ""
	if err := evidence.Save(ev, b); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "", "report", "--evidence", ev, "-o", pdf, "--client", "Beta Corp"); code != exitOK || !strings.Contains(out, "client:   Beta Corp") {
		t.Fatalf("--client for evidence without one: exit %d\n%s\n%s", code, out, errOut)
	}

	// A template that turns OPEN into CLOSED is refused.
	tpl := filepath.Join(dir, "tpl")
	os.Mkdir(tpl, 0o700)
	os.WriteFile(filepath.Join(tpl, "texts.txt"), []byte("[labels.rows]\nOPEN | CLOSED\n"), 0o600)
	closed := filepath.Join(dir, "closed.pdf")
	if code, _, errOut := runCLI(t, "", "report", "--evidence", ev, "-o", closed, "--template", tpl); code == exitOK || !strings.Contains(errOut, `"OPEN"`) {
		t.Errorf("OPEN | CLOSED template: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(closed); err == nil {
		t.Error("a PDF was written with OPEN shown as CLOSED")
	}
	// A reworded template is recorded by its SHA-256.
	texts := []byte("[summary.none]\nKeine Feststellung.\n")
	os.WriteFile(filepath.Join(tpl, "texts.txt"), texts, 0o600)
	custom := filepath.Join(dir, "custom.pdf")
	if code, out, errOut := runCLI(t, "", "report", "--evidence", ev, "-o", custom, "--template", tpl); code != exitOK {
		t.Fatalf("reworded template: exit %d\n%s\n%s", code, out, errOut)
	}
	b, _, err = evidence.LoadVerified(ev)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]evidence.Artifact{}
	for _, a := range b.Artifacts {
		got[filepath.Base(a.Path)] = a
	}
	if a := got["beta.pdf"]; a.Client != "Beta Corp" || a.TemplateSHA256 != "" {
		t.Errorf("beta.pdf recorded as %+v", a)
	}
	want := fileSHA256(t, filepath.Join(tpl, "texts.txt"))
	if a := got["custom.pdf"]; a.TemplateSHA256 != want || a.Client != "" {
		t.Errorf("custom.pdf recorded as %+v, want template_sha256 %s", a, want)
	}
	if code, out, _ := runCLI(t, "", "verify", ev); code != exitOK {
		t.Errorf("verify after recording: exit %d\n%s", code, out)
	}
}
