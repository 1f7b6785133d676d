package engagement

import (
	"context"
	"io"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
)

// Transitional exports for the jobs still in cmd/relaylock; removed when
// they move here.

func RunProbe(ctx context.Context, e *Env, opts audit.Options) (*audit.Result, error) {
	return runProbe(ctx, e, opts)
}
func VerdictExit(r *audit.Result) error      { return verdictExit(r) }
func InconclusiveWhy(r *audit.Result) string { return inconclusiveWhy(r) }
func ProbeCost(r *audit.Result) string       { return probeCost(r) }
func ParsePorts(s string) ([]int, error)     { return parsePorts(s) }
func EvidenceWriteFailed(w io.Writer, open bool, err error) error {
	return evidenceWriteFailed(w, open, err)
}
func (o ProbeOptions) AuditOptions(e *Env, targets []string) (audit.Options, error) {
	return o.auditOptions(e, targets)
}

func JournalPath(evidencePath string) string { return journalPath(evidencePath) }

func CheckBackupRecorded(w io.Writer, evPath, backupPath string, b *remediate.Backup, sum string) error {
	return checkBackupRecorded(w, evPath, backupPath, b, sum)
}
