package engagement

import (
	"context"
	"io"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
	"net/netip"
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

func ProberAddrs(results ...*audit.Result) []netip.Addr { return proberAddrs(results...) }
func LastAudit(path string) *audit.Result               { return lastAudit(path) }
func OSUser() string                                    { return osUser() }
func OpenRunner(e *Env, w WinRMOptions, host string) (remediate.Runner, string, error) {
	return openRunner(e, w, host)
}
func CloseRunner(r remediate.Runner)                       { closeRunner(r) }
func OpenFinding(insp *remediate.Inspection) bool          { return openFinding(insp) }
func OneLineValue(v string) string                         { return oneLineValue(v) }
func HostOptions(dc string) (remediate.HostOptions, error) { return hostOptions(dc) }

func WriteEndpointReasons(w io.Writer, r *audit.Result, all bool) { writeEndpointReasons(w, r, all) }
