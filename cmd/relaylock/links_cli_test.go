package main

import (
	"strings"
	"testing"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// assertLinked checks that the records of a remediation (and of its
// rollback, when there is one) name each other by ID in the evidence: each
// change the inspection it was planned from and its backup, each re-test
// the change it verifies, and that verify resolves every link.
func assertLinked(t *testing.T, b *evidence.Bundle, r *evidence.CheckResult) {
	t.Helper()
	insp := map[string]bool{}
	for _, in := range b.Inspections {
		if in.ID == "" {
			t.Errorf("inspection of %s at %s has no ID", in.Host, in.Time)
		}
		insp[in.ID] = true
	}
	backups := map[string]bool{}
	for _, bk := range b.Backups {
		backups[bk.SHA256] = true
	}
	kinds := map[string]remediate.ChangeKind{}
	var remediation *remediate.ChangeRecord
	for i := range b.Changes {
		c := &b.Changes[i]
		kinds[c.ID] = c.Kind
		if !insp[c.Inspection] || !backups[c.BackupSHA256] {
			t.Errorf("change %s (%s) names inspection %q and backup %q, not in the evidence", c.ID, c.Kind, c.Inspection, c.BackupSHA256)
		}
		switch c.Kind {
		case remediate.ChangeRemediate:
			remediation = c
		case remediate.ChangeRollback:
			// The backup holds the inspection the remediation was
			// planned from: the rollback names the same one.
			if remediation == nil || c.Inspection != remediation.Inspection || c.BackupSHA256 != remediation.BackupSHA256 {
				t.Errorf("rollback %s names inspection %q and backup %q; the remediation %+v", c.ID, c.Inspection, c.BackupSHA256, remediation)
			}
		}
	}
	verified := map[string]bool{}
	for i, a := range b.Audits {
		var want remediate.ChangeKind
		switch a.Purpose {
		case evidence.PurposeAudit:
			if a.Change != "" {
				t.Errorf("audits[%d] (audit) names change %s", i, a.Change)
			}
			continue
		case evidence.PurposeRetest:
			want = remediate.ChangeRemediate
		case evidence.PurposeRollbackRetest:
			want = remediate.ChangeRollback
		default:
			t.Errorf("audits[%d]: purpose %q", i, a.Purpose)
			continue
		}
		// A re-test after a run that needed no change names none.
		if a.Change != "" && kinds[a.Change] != want {
			t.Errorf("audits[%d] (%s) names change %q, a %q", i, a.Purpose, a.Change, kinds[a.Change])
		}
		verified[a.Change] = true
	}
	for _, c := range b.Changes {
		if c.Result == remediate.ResultApplied && !verified[c.ID] {
			t.Errorf("no re-test names the applied change %s", c.ID)
		}
	}
	for _, n := range r.Notes {
		if strings.HasPrefix(n, "link: ") {
			t.Errorf("verify: %s", n)
		}
	}
}
