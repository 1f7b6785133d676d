package engagement

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/audit"
)

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
