package evidence

import (
	"fmt"

	"github.com/relaylock/relaylock/remediate"
)

// Records name each other by ID: a re-test names the change it verifies
// (AuditRun.Change), and a change the inspection it was planned from
// (remediate.ChangeRecord.Inspection) and its backup (BackupSHA256, the
// SHA-256 of the backup file, which BackupRef.SHA256 also holds). The
// seal covers these fields like any other.
//
// A link that names nothing in the file, or a record of the wrong kind,
// is not tampering: a record can be lost honestly (its write failed after
// the change, and the run said so), and a rollback may restore a backup
// recorded in another evidence file. So Check reports it as a note, not a
// problem: the file still verifies, and the report still renders, tying
// that record by host name as for evidence written before links existed.
// A record without a link is indistinguishable from one written before
// links existed, and is not reported.

// checkLinks returns a note for every link of b that does not resolve.
func checkLinks(b *Bundle) []string {
	insp := map[string]*remediate.Inspection{}
	var notes []string
	for i := range b.Inspections {
		in := &b.Inspections[i]
		id := in.Ref()
		if prev, dup := insp[id]; dup {
			if in.ID != "" && prev.ID == in.ID {
				notes = append(notes, fmt.Sprintf("link: inspections[%d] has the ID %s of an earlier inspection; changes that name it are tied to the first", i, in.ID))
			}
			continue
		}
		insp[id] = in
	}
	changes := map[string]*remediate.ChangeRecord{}
	for i := range b.Changes {
		if c := &b.Changes[i]; changes[c.ID] == nil {
			changes[c.ID] = c
		}
	}
	backups := map[string]bool{}
	for _, bk := range b.Backups {
		backups[bk.SHA256] = true
	}
	for i, a := range b.Audits {
		if a.Change == "" {
			continue
		}
		what := fmt.Sprintf("audits[%d] (%s)", i, a.Purpose)
		c := changes[a.Change]
		var want remediate.ChangeKind
		switch a.Purpose {
		case PurposeRetest:
			want = remediate.ChangeRemediate
		case PurposeRollbackRetest:
			want = remediate.ChangeRollback
		case PurposeAudit:
			notes = append(notes, fmt.Sprintf("link: %s names change %s, but an audit before any change verifies none", what, a.Change))
			continue
		default:
			// A purpose this build does not know: any change may fit.
		}
		switch {
		case c == nil:
			notes = append(notes, fmt.Sprintf("link: %s names change %s, which is not in this evidence; the report ties the run by host name", what, a.Change))
		case want != "" && c.Kind != want:
			notes = append(notes, fmt.Sprintf("link: %s names change %s, which is a %s, not a %s", what, a.Change, c.Kind, want))
		}
	}
	for i := range b.Changes {
		c := &b.Changes[i]
		if c.Inspection == "" {
			continue // recorded before links existed
		}
		what := fmt.Sprintf("changes[%d] (%s %s)", i, c.Kind, c.ID)
		switch in := insp[c.Inspection]; {
		case in == nil && c.Kind == remediate.ChangeRollback:
			notes = append(notes, fmt.Sprintf("link: %s names inspection %s, the state its backup restores, which is not in this evidence (a backup recorded elsewhere?); the report ties the change by host name", what, c.Inspection))
		case in == nil:
			notes = append(notes, fmt.Sprintf("link: %s names inspection %s, which is not in this evidence; the report ties the change by host name", what, c.Inspection))
		case in.Platform != c.Platform:
			notes = append(notes, fmt.Sprintf("link: %s (%s) names inspection %s of a %s host", what, c.Platform, c.Inspection, in.Platform))
		}
		if c.BackupSHA256 != "" && !backups[c.BackupSHA256] {
			notes = append(notes, fmt.Sprintf("link: %s names backup sha256 %s, which is not in this evidence's backups", what, c.BackupSHA256))
		}
	}
	return notes
}
