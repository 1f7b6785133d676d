package evidence

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
)

// linked is the RFC 8785 fixture with its records linked as this version
// records them: the inspection under its ID, the change naming it and its
// backup, a re-test naming the change.
func linked() *Bundle {
	b := jcsFixture()
	id := b.AddInspection(b.Inspections[0])
	b.Inspections = b.Inspections[1:]
	b.Changes[0].Inspection = id
	b.Changes[0].BackupSHA256 = strings.Repeat("12", 32)
	b.Backups = []BackupRef{{File: "backup.json", SHA256: b.Changes[0].BackupSHA256,
		Backup: &remediate.Backup{Schema: remediate.BackupSchema, Host: "mx.example.com", Platform: remediate.PlatformIIS, Taken: t0}}}
	re := *b.Audits[0].Result
	re.Verdict = audit.VerdictClosed
	b.Audits = append(b.Audits, AuditRun{Purpose: PurposeRetest, Host: "mx.example.com", Change: b.Changes[0].ID, Result: &re})
	return b
}

func linkNotes(r *CheckResult) []string {
	var out []string
	for _, n := range r.Notes {
		if strings.HasPrefix(n, "link: ") {
			out = append(out, n)
		}
	}
	return out
}

// verify notes each link that names nothing in the evidence, or a record
// of the wrong kind; the file still verifies.
func TestCheckLinks(t *testing.T) {
	tests := []struct {
		name string
		edit func(b *Bundle)
		want []string // substrings, one per note
	}{
		{"linked", func(b *Bundle) {}, nil},
		{"before links existed", func(b *Bundle) {
			b.Inspections[0].ID, b.Changes[0].Inspection, b.Audits[1].Change = "", "", ""
		}, nil},
		{"inspection recorded before IDs", func(b *Bundle) { b.Inspections[0].ID = "" }, nil},
		{"change not recorded", func(b *Bundle) { b.Audits[1].Change = "CHG-LOST" },
			[]string{"audits[1] (retest) names change CHG-LOST, which is not in this evidence"}},
		{"re-test names a rollback", func(b *Bundle) { b.Changes[0].Kind = remediate.ChangeRollback },
			[]string{"audits[1] (retest) names change CHG-1, which is a rollback, not a remediate"}},
		{"audit names a change", func(b *Bundle) { b.Audits[0].Change = "CHG-1" },
			[]string{"audits[0] (audit) names change CHG-1, but an audit before any change verifies none"}},
		{"inspection not recorded", func(b *Bundle) { b.Changes[0].Inspection = "INS-20260506T070809Z-00000000" },
			[]string{"changes[0] (remediate CHG-1) names inspection INS-20260506T070809Z-00000000, which is not in this evidence"}},
		{"rollback of a backup recorded elsewhere", func(b *Bundle) {
			b.Changes[0].Kind, b.Audits[1].Purpose = remediate.ChangeRollback, PurposeRollbackRetest
			b.Changes[0].Inspection = "INS-20260506T070809Z-00000000"
		}, []string{"the state its backup restores, which is not in this evidence (a backup recorded elsewhere?)"}},
		{"inspection of another platform", func(b *Bundle) { b.Changes[0].Platform = remediate.PlatformExchange },
			[]string{"changes[0] (remediate CHG-1) (exchange) names inspection INS-"}},
		{"backup not recorded", func(b *Bundle) { b.Backups = nil },
			[]string{"changes[0] (remediate CHG-1) names backup sha256 1212"}},
		{"two inspections with one ID", func(b *Bundle) { b.Inspections = append(b.Inspections, b.Inspections[0]) },
			[]string{"inspections[1] has the ID INS-"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := linked()
			tc.edit(b)
			if err := Seal(b); err != nil {
				t.Fatal(err)
			}
			r, err := Check(b, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Problems) != 0 {
				t.Errorf("problems %q", r.Problems)
			}
			notes := linkNotes(r)
			if len(notes) != len(tc.want) {
				t.Fatalf("notes %q, want %d", notes, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(notes[i], w) {
					t.Errorf("note %q does not say %q", notes[i], w)
				}
			}
		})
	}
}

// The link fields are written, read strictly, covered by the seal, and
// the independent Python verifier agrees with Check on them.
func TestLinksSealed(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "linked.json")
	if err := Save(p, linked()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"id": "INS-`, `"inspection": "INS-`, `"change": "CHG-1"`, `"purpose": "retest"`} {
		if !bytes.Contains(data, []byte(field)) {
			t.Errorf("the file has no %s", field)
		}
	}
	b, r, err := LoadVerified(p) // strict
	if err != nil {
		t.Fatal(err)
	}
	if b.Audits[1].Change != "CHG-1" || b.Changes[0].Inspection != b.Inspections[0].ID || len(linkNotes(r)) != 0 {
		t.Errorf("read back: change %q, inspection %q (ID %q), notes %q", b.Audits[1].Change, b.Changes[0].Inspection, b.Inspections[0].ID, r.Notes)
	}
	id := b.Inspections[0].ID
	edits := []struct {
		name, old, new string
		section        string
	}{
		{"re-test relinked", `"change": "CHG-1"`, `"change": "CHG-2"`, "audits[1]"},
		{"change relinked", `"inspection": "` + id + `"`, `"inspection": "INS-20260506T070809Z-00000000"`, "changes[0]"},
		{"inspection renamed", `"id": "` + id + `"`, `"id": "INS-20260506T070809Z-00000000"`, "inspections[0]"},
	}
	py, pyErr := exec.LookPath("python3")
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			if bytes.Count(data, []byte(e.old)) != 1 {
				t.Fatalf("%s occurs %d times", e.old, bytes.Count(data, []byte(e.old)))
			}
			q := filepath.Join(dir, strings.ReplaceAll(e.name, " ", "-")+".json")
			if err := os.WriteFile(q, bytes.Replace(data, []byte(e.old), []byte(e.new), 1), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadVerified(q)
			var me *ModifiedError
			if !errors.As(err, &me) {
				t.Fatalf("edited link verified: %v", err)
			}
			_, r, err := CheckFile(q)
			if err != nil || !slices.Equal(r.Modified(), []string{e.section}) {
				t.Errorf("modified %q (%v), want %s", r.Modified(), err, e.section)
			}
			if pyErr != nil {
				return
			}
			out, err := exec.Command(py, "testdata/verify.py", q).Output()
			if err == nil || !strings.Contains(string(out), "MISMATCH "+e.section) {
				t.Errorf("verify.py did not name %s:\n%s", e.section, out)
			}
		})
	}
	if pyErr == nil {
		if out, err := exec.Command(py, "testdata/verify.py", p).Output(); err != nil {
			t.Errorf("verify.py refused the linked file: %v\n%s", err, out)
		}
	} else if os.Getenv("CI") != "" {
		t.Fatal("python3 is required in CI")
	}
}
