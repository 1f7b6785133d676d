// Package evidence is relaylock's evidence bundle: one schema-versioned
// JSON document that audit, inspect, remediate, rollback and report add to
// without losing earlier sections. Writes are atomic (internal/atomicfile):
// a temporary file is written, synced and renamed over the target, so a
// crash leaves the old file or the new one, never half of one.
//
// The schema is documented in README.md ("Evidence file"). Fields are
// added, never redefined.
//
// # Integrity
//
// Every Save seals the bundle (Seal): each section (the header, every audit
// run, inspection, plan, backup, change record and artifact, and the log)
// gets the SHA-256 of its JSON value in RFC 8785 canonical form (AlgJCS;
// files sealed earlier keep AlgLegacy), and the bundle gets a Digest over
// the content sections and a Manifest over all of them. Files are read
// strictly (strict.go), so the hashes cover exactly what is decoded, and
// LoadVerified, Update and Sign refuse evidence that does not match its
// seal (ErrModified). Check recomputes
// every hash and names each section that no longer matches, and checks the
// SHA-256 of each backup and artifact file that is present. Unkeyed hashes
// only reveal naive edits; Sign adds an Ed25519 signature over the evidence
// file and report hashes (FILE.sig.json) that an editor cannot forge.
//
// The Digest is what the PDF report prints as the evidence hash. It covers
// the content the report is rendered from and not the artifacts or the log,
// so recording the rendered PDF as an artifact afterwards does not change
// it: `relaylock verify` prints the same digest the report shows.
package evidence

import (
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
)

// Schema is the current Bundle.Schema.
const Schema = "relaylock.evidence/v1"

// Bundle is the whole evidence file. Field order is the JSON order.
type Bundle struct {
	// Schema is "relaylock.evidence/v<major>"; Load refuses other names
	// and newer majors.
	Schema string `json:"schema"`
	// ID is the report id ("RL-20260506-1a2b3c4d"), stable for the
	// bundle's life.
	ID string `json:"id"`
	// Created is when the bundle was started, Updated when it was last
	// saved (both UTC).
	Created    time.Time  `json:"created"`
	Updated    time.Time  `json:"updated"`
	Engagement Engagement `json:"engagement"`
	// Tool is the build that last wrote the bundle.
	Tool Tool `json:"tool"`
	// Audits are the external probe runs, in order; a remediation's
	// re-test is an audit with Purpose "retest".
	Audits []AuditRun `json:"audits"`
	// Inspections are WinRM reads of a host's relay settings, with the
	// SHA-256 and raw output of every script run.
	Inspections []remediate.Inspection `json:"inspections"`
	// Plans are the changes remediate computed, one per host and run.
	Plans []remediate.Plan `json:"plans"`
	// Backups are the prior states saved before each change.
	Backups []BackupRef `json:"backups"`
	// Changes are the change records of remediations and rollbacks.
	Changes []remediate.ChangeRecord `json:"changes"`
	// Artifacts are files produced from the evidence (PDF reports).
	Artifacts []Artifact `json:"artifacts"`
	// Log is a short, human-readable account of what was done, in order.
	Log []LogEntry `json:"log"`
	// Integrity holds the section hashes written by the last Save (Seal).
	Integrity *Integrity `json:"integrity,omitempty"`
}

// Engagement describes the job the evidence belongs to.
type Engagement struct {
	// Client is the organisation the systems belong to.
	Client string `json:"client,omitempty"`
	// Authorization is the reference to the written authorization to test
	// and change the systems (ISO/IEC 27001:2022 A.8.34).
	Authorization string `json:"authorization,omitempty"`
	// Operator is the OS user who ran relaylock.
	Operator string `json:"operator,omitempty"`
	// Scope lists the targets named by the operator.
	Scope []string `json:"scope,omitempty"`
	// Ticket is the change ticket the work was done under.
	Ticket string `json:"ticket,omitempty"`
}

// Tool identifies the relaylock build that wrote a section.
type Tool struct {
	Name      string `json:"name"`       // "relaylock"
	Version   string `json:"version"`    // release version or "dev"
	Commit    string `json:"commit"`     // VCS revision of the build
	GoVersion string `json:"go_version"` // runtime.Version() of the build
	OS        string `json:"os"`         // runtime.GOOS
	Arch      string `json:"arch"`       // runtime.GOARCH
}

// Purpose says why an audit run was made. Its values are written to the
// evidence ("purpose") and must never change.
type Purpose string

const (
	// PurposeAudit: a look from outside before any change (relaylock
	// audit; fix's first step; remediate's probe before the change). The
	// report's "before" column is the first one.
	PurposeAudit Purpose = "audit"
	// PurposeRetest: the re-test after a remediation, to see whether the
	// change closed the relay. It names the change (AuditRun.Change).
	PurposeRetest Purpose = "retest"
	// PurposeRollbackRetest: the re-test after a rollback, to see the
	// host as the restored state leaves it. It names the rollback.
	PurposeRollbackRetest Purpose = "rollback-retest"
)

// AuditRun is one audit with its purpose.
type AuditRun struct {
	Purpose Purpose `json:"purpose"`
	// Host is, for re-tests, the WinRM host that was re-tested.
	Host string `json:"host,omitempty"`
	// Change is, for a re-test, the ID of the change record
	// (remediate.ChangeRecord.ID) it verifies: the remediation for
	// PurposeRetest, the rollback for PurposeRollbackRetest. Empty for a
	// re-test of a host that needed no change, and in runs recorded
	// before links existed.
	Change string `json:"change,omitempty"`
	// InsideView, on a re-test, names each address of this machine that
	// the re-test connected from and that the allowed list of the change
	// lets relay: from there the host relays by design, so the re-test
	// cannot tell a closed relay from an open one for the endpoints
	// listed. Empty when the re-test saw the host as a stranger does.
	InsideView []InsideView `json:"inside_view,omitempty"`
	// Result is the audit's full result: vantage, DNS answers, endpoints,
	// tests and transcripts. It must stay the last JSON field: the encoder
	// splices the targets in at the end of the run's JSON (hashAudit).
	Result *audit.Result `json:"result"`
	// Targets, if set, supplies Result.Targets to the encoder one target
	// at a time, in order, instead of Result.Targets (which must then be
	// nil): Save writes and hashes each target as it comes, so a run of
	// any size is written holding one target. The file and its seal are
	// byte for byte those of the same run with Result.Targets filled.
	// Targets may be called more than once (Seal, then Save) and must
	// yield the same targets each time. Nothing sets it when reading.
	Targets TargetSource `json:"-"`
}

// InsideView is one address a re-test came from that the host allows to
// relay (AuditRun.InsideView).
type InsideView struct {
	// Prober is this machine's address as the host saw it.
	Prober string `json:"prober"`
	// Allowed is the entry of the allowed list that contains it.
	Allowed string `json:"allowed"`
	// Loopback is set when Allowed is the 127.0.0.1 entry relaylock
	// adds by default on IIS and Exchange 2000/2003 (--no-loopback).
	Loopback bool `json:"loopback,omitempty"`
	// Endpoints are the endpoints ("address:port") the re-test reached
	// from Prober.
	Endpoints []string `json:"endpoints"`
}

// TargetSource calls yield with each target of an audit run, in order,
// stopping at yield's first error, and returns that error or its own.
// The TargetResult passed to yield is not kept after yield returns.
type TargetSource func(yield func(*audit.TargetResult) error) error

// BackupRef records a backup written by remediate.
type BackupRef struct {
	// File is the backup file's path as written (relative paths are
	// relative to the evidence file's directory when verified).
	File string `json:"file"`
	// SHA256 is the hex SHA-256 of the backup file's bytes.
	SHA256 string `json:"sha256"`
	// Backup is the backup's content.
	Backup *remediate.Backup `json:"backup"`
}

// Artifact is a file produced alongside the evidence (the PDF report).
type Artifact struct {
	Name    string    `json:"name"`    // base name, e.g. "report.pdf"
	Path    string    `json:"path"`    // path as written
	SHA256  string    `json:"sha256"`  // hex SHA-256 of the file's bytes
	Size    int64     `json:"size"`    // bytes
	Created time.Time `json:"created"` // when it was written (UTC)
	// Kind is ArtifactReport for a PDF report.
	Kind string `json:"kind,omitempty"`
	// EvidenceDigest is the bundle's Digest the artifact was produced from
	// (the hash the report prints).
	EvidenceDigest string `json:"evidence_digest,omitempty"`
	// Client is the client name given when the report was rendered
	// (report --client) for evidence that names no client, so printed in
	// the report but not held by the engagement. Empty when the report
	// used the engagement's own (or none).
	Client string `json:"client,omitempty"`
	// TemplateSHA256 is the hex SHA-256 of the texts file (texts.txt) of
	// the --template directory the report was rendered with; empty for
	// the built-in texts.
	TemplateSHA256 string `json:"template_sha256,omitempty"`
}

// Rendering is what a report used that the evidence itself does not
// hold, recorded with the report's artifact (Artifact.Client,
// Artifact.TemplateSHA256).
type Rendering struct {
	Client         string
	TemplateSHA256 string
}

// ArtifactReport is Artifact.Kind of a PDF report rendered from the
// evidence. It is a word of the evidence and must never change.
const ArtifactReport = "report"

// LogEntry is one line of the account of what was done.
type LogEntry struct {
	Time time.Time `json:"time"` // UTC
	// Step is "audit", "inspect", "plan", "backup", "apply", "readback",
	// "retest", "rollback" or "report".
	Step    string `json:"step"`
	Host    string `json:"host,omitempty"`
	Message string `json:"message"`
}

// AddInspection records an inspection under its ID (Inspection.Ref, set
// in the record), the ID the change records planned from it name, and
// returns the ID.
func (b *Bundle) AddInspection(in remediate.Inspection) string {
	in.ID = in.Ref()
	b.Inspections = append(b.Inspections, in)
	return in.ID
}
