// Package evidence is relaylock's evidence bundle: one schema-versioned
// JSON document that audit, inspect, remediate, rollback and report add to
// without losing earlier sections. Writes are atomic (internal/atomicfile).
//
// The schema is documented in README.md ("Evidence file"). Fields are
// added, never redefined.
package evidence

import (
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
)

// Schema is the current Bundle.Schema.
const Schema = "relaylock.evidence/v1"

// Bundle is the whole evidence file.
type Bundle struct {
	Schema     string     `json:"schema"`
	ID         string     `json:"id"` // report id, stable for the bundle's life
	Created    time.Time  `json:"created"`
	Updated    time.Time  `json:"updated"`
	Engagement Engagement `json:"engagement"`
	Tool       Tool       `json:"tool"`
	// Audits are the external probe runs, in order; a remediation's
	// re-test is an audit with Purpose "retest".
	Audits      []AuditRun               `json:"audits"`
	Inspections []remediate.Inspection   `json:"inspections"`
	Plans       []remediate.Plan         `json:"plans"`
	Backups     []BackupRef              `json:"backups"`
	Changes     []remediate.ChangeRecord `json:"changes"`
	Artifacts   []Artifact               `json:"artifacts"`
	// Log is a short, human-readable account of what was done, in order.
	Log []LogEntry `json:"log"`
}

// Engagement describes the job the evidence belongs to.
type Engagement struct {
	Client        string   `json:"client,omitempty"`
	Authorization string   `json:"authorization,omitempty"` // reference to the written authorization
	Operator      string   `json:"operator,omitempty"`      // OS user who ran relaylock
	Scope         []string `json:"scope,omitempty"`         // targets named by the operator
	Ticket        string   `json:"ticket,omitempty"`
}

// Tool identifies the relaylock build that wrote a section.
type Tool struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// AuditRun is one audit with its purpose.
type AuditRun struct {
	Purpose string        `json:"purpose"`        // "audit", "retest", "rollback-retest"
	Host    string        `json:"host,omitempty"` // for re-tests: the WinRM host re-tested
	Result  *audit.Result `json:"result"`
}

// BackupRef records a backup written by remediate.
type BackupRef struct {
	File   string            `json:"file"`
	SHA256 string            `json:"sha256"`
	Backup *remediate.Backup `json:"backup"`
}

// Artifact is a file produced alongside the evidence (the PDF report).
type Artifact struct {
	Name    string    `json:"name"`
	Path    string    `json:"path"`
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
}

// LogEntry is one line of the account of what was done.
type LogEntry struct {
	Time    time.Time `json:"time"`
	Step    string    `json:"step"` // "audit", "inspect", "plan", "backup", "apply", "readback", "retest", "rollback", "report"
	Host    string    `json:"host,omitempty"`
	Message string    `json:"message"`
}
