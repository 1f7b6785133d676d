package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportNeverReplacesForeignFiles (tryout 7): -o over an existing
// file that this evidence does not record as its report is refused and
// the file is left as it was: an unrelated file, another evidence file's
// report, and this evidence's report after someone changed it.
func TestReportNeverReplacesForeignFiles(t *testing.T) {
	dir := t.TempDir()
	ev := copyFixture(t, dir)
	other := filepath.Join(dir, "other")
	os.Mkdir(other, 0o700)
	ev2 := copyFixture(t, other)
	theirs := filepath.Join(other, "theirs.pdf")
	if code, _, errOut := runCLI(t, "", "report", "--evidence", ev2, "-o", theirs); code != exitOK {
		t.Fatalf("report of the other evidence: %s", errOut)
	}
	note := filepath.Join(dir, "n.txt")
	os.WriteFile(note, []byte("my notes\n"), 0o600)
	for _, p := range []string{note, theirs} {
		before, _ := os.ReadFile(p)
		code, out, errOut := runCLI(t, "", "report", "--evidence", ev, "-o", p)
		if code != exitUsage || !strings.Contains(errOut, "is not a report this evidence records: refusing to replace it") {
			t.Errorf("report -o %s: exit %d, want %d refusing\n%s\n%s", p, code, exitUsage, out, errOut)
		}
		if after, _ := os.ReadFile(p); !bytes.Equal(after, before) {
			t.Errorf("%s was replaced", p)
		}
	}
	// Its own report is rendered again in place; once changed by hand the
	// evidence no longer verifies, and the file is kept.
	mine := filepath.Join(dir, "mine.pdf")
	for i := range 2 {
		if code, _, errOut := runCLI(t, "", "report", "--evidence", ev, "-o", mine); code != exitOK {
			t.Fatalf("report %d: %s", i, errOut)
		}
	}
	edited := []byte("%PDF-1.4 edited\n")
	os.WriteFile(mine, edited, 0o600)
	if code, _, errOut := runCLI(t, "", "report", "--evidence", ev, "-o", mine); code != exitError || !strings.Contains(errOut, "file changed") {
		t.Errorf("report over its own report, edited: exit %d\n%s", code, errOut)
	}
	if after, _ := os.ReadFile(mine); !bytes.Equal(after, edited) {
		t.Error("the edited report was replaced")
	}
}
