package remediate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"time"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// This file is remediate's data model. Inspections, plans, backups and
// change records are part of the evidence file: fields are added, never
// redefined.

// Platform names a kind of Windows mail host.
type Platform string

const (
	PlatformIIS          Platform = "iis-smtp"     // IIS 6 SMTP service (metabase)
	PlatformExchange2003 Platform = "exchange2003" // Exchange 2000/2003 SMTP virtual servers (AD + metabase)
	PlatformExchange     Platform = "exchange"     // Exchange 2007..SE receive connectors
)

// Runner runs one embedded script (templates/powershell/<script>.ps1) on
// a host with the given parameters and returns the run, with its decoded
// records. Params are data, never PowerShell source. Secrets (the
// second-hop credential, hop.go) travel in the payload only, added by the
// runner itself (AddHopParams), and never appear in ScriptRun.Params.
type Runner interface {
	Run(ctx context.Context, script string, params map[string]string) (*ScriptRun, error)
}

// ScriptRun is the evidence of one script run.
type ScriptRun struct {
	Script string `json:"script"`
	SHA256 string `json:"sha256"` // of the full script text sent (prologue + script)
	// Params are the parameters the caller passed; secret ones
	// (IsSecretParam: the second-hop password) are never recorded.
	Params map[string]string `json:"params,omitempty"`
	// Hop says which credential the script used for the second hop
	// (HopNote), for scripts that reach AD or the Exchange shell.
	Hop      string    `json:"second_hop,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exit_code"`
	Stdout   string    `json:"stdout"`
	Stderr   string    `json:"stderr,omitempty"`
	// Errors are the readable messages parsed from CLIXML on stderr and
	// from "error" records.
	Errors []string `json:"errors,omitempty"`
	// Output is the decoded result frame; nil when the frame was missing.
	Output *psframe.Output `json:"-"`
}

// HostInfo is what detection found out about a host.
type HostInfo struct {
	// WinRSMaxMemoryMB is WinRM's MaxMemoryPerShellMB quota (0: unknown);
	// WinRSMaxMemorySource says where it came from: "wsman" (the WSMan:
	// drive), "registry" (a value set by an administrator) or "default"
	// (WinRM's default for the PowerShell version, not read).
	WinRSMaxMemoryMB     int    `json:"winrs_max_memory_mb,omitempty"`
	WinRSMaxMemorySource string `json:"winrs_max_memory_source,omitempty"`

	ComputerName    string        `json:"computer_name"`
	Domain          string        `json:"domain,omitempty"`
	OSCaption       string        `json:"os_caption"`
	OSVersion       string        `json:"os_version"`
	PSVersion       string        `json:"ps_version"`
	Is64BitProcess  bool          `json:"is_64bit_process"`
	ExchangeVersion string        `json:"exchange_version,omitempty"` // "2003", "2007", "2010", "2013", "2016", "2019", "SE"
	ExchangeBuild   string        `json:"exchange_build,omitempty"`
	ExchangeRoles   []string      `json:"exchange_roles,omitempty"`
	Services        []ServiceInfo `json:"services"`
	Features        []FeatureInfo `json:"features,omitempty"`
	Platform        Platform      `json:"platform"`

	// ExchangeServerAdmin is the ExchangeServerAdmin value of
	// HKLM\SOFTWARE\Microsoft\Exchange\Setup (the Exchange 2000/2003
	// install path; Exchange 4.0-5.5 have no such value).
	ExchangeServerAdmin string `json:"exchange_server_admin,omitempty"`
}

// ServiceInfo is one Windows service of interest.
type ServiceInfo struct {
	Name      string `json:"name"`
	Present   bool   `json:"present"`
	State     string `json:"state,omitempty"`      // Running, Stopped, ...
	StartMode string `json:"start_mode,omitempty"` // Auto, Manual, Disabled
}

// FeatureInfo is one Windows feature of interest (SMTP-Server, Web-WMI).
type FeatureInfo struct {
	Name      string `json:"name"`
	Installed bool   `json:"installed"`
}

// Setting is one row of the readable settings table. Object names a
// configuration object (e.g. "SmtpSvc/1", "Receive connector EX1\Relay"),
// Name a setting on it, Value its canonical text. Plans and read-backs
// compare these rows, so Value must be deterministic. A missing object's
// rows are absent; ValueAbsent stands for "no such object" in a Change.
type Setting struct {
	Object string `json:"object"`
	Name   string `json:"name"`
	Value  string `json:"value"`
}

// ValueAbsent is the Current or New value of an object that does not
// exist (before a create, after a delete).
const ValueAbsent = "(absent)"

// Severity of a finding.
type Severity string

const (
	SeverityHigh   Severity = "high"
	SeverityMedium Severity = "medium"
	SeverityLow    Severity = "low"
	SeverityInfo   Severity = "info"
)

// Finding is one root cause (or risk) found in a host's settings.
type Finding struct {
	ID       string   `json:"id"` // stable, e.g. "IIS-RELAY-ALL-EXCEPT-EMPTY"
	Title    string   `json:"title"`
	Severity Severity `json:"severity"`
	Object   string   `json:"object"`
	Setting  string   `json:"setting"`
	Value    string   `json:"value"`
	// Explains is true when this setting explains what the external probe
	// saw from the prober's address (e.g. the prober is inside a range
	// that may relay).
	Explains    bool   `json:"explains"`
	Detail      string `json:"detail"`
	Remediation string `json:"remediation"`
}

// Inspection is the result of reading one host.
type Inspection struct {
	// ID names the inspection in the evidence (Ref), so that a change
	// record can name the inspection it was planned from. Inspections
	// recorded before IDs existed have none.
	ID       string    `json:"id,omitempty"`
	Host     string    `json:"host"`
	Time     time.Time `json:"time"`
	Platform Platform  `json:"platform"`
	HostInfo HostInfo  `json:"host_info"`
	// Prober are the addresses the external probe came from, used to
	// decide Finding.Explains.
	Prober   []string  `json:"prober,omitempty"`
	Settings []Setting `json:"settings"`
	Findings []Finding `json:"findings"`
	// State is the platform's full typed state (IISState, ...), the
	// source of Settings and of backups.
	State json.RawMessage `json:"state"`
	Runs  []ScriptRun     `json:"runs"`
	// Warnings are things the operator should know before trusting or
	// acting on the inspection (e.g. a WinRM memory quota too small for
	// the Exchange shell).
	Warnings []string `json:"warnings,omitempty"`
}

// Ref is the inspection's ID: ID when set, else the one derived from its
// host, time and platform, "INS-20260506T070809Z-1a2b3c4d". The derived
// ID is the same for every copy of the inspection (the one a backup holds,
// the one recorded in the evidence), so a change record can name the
// inspection before the evidence has recorded it. It is "" for nil.
func (in *Inspection) Ref() string {
	if in == nil {
		return ""
	}
	if in.ID != "" {
		return in.ID
	}
	t := in.Time.UTC()
	h := sha256.Sum256([]byte(in.Host + "\n" + t.Format(time.RFC3339Nano) + "\n" + string(in.Platform)))
	return "INS-" + t.Format("20060102T150405Z") + "-" + hex.EncodeToString(h[:4])
}

// FixTextLoopback is how a cause's fix text, written at inspection before
// any plan, says that the relay list will also hold 127.0.0.1
// (Request.AddsLoopback); the report rewords it from what was applied.
const FixTextLoopback = "(and 127.0.0.1)"

// AddsLoopback reports whether a plan for r on platform p adds 127.0.0.1
// to the allowed clients: the IIS and Exchange 2000/2003 relay lists do
// (DesiredRelayList) unless NoLoopback; Exchange 2007+ connectors never do.
func (r Request) AddsLoopback(p Platform) bool {
	return !r.NoLoopback && (p == PlatformIIS || p == PlatformExchange2003)
}

// Request is what the operator asked remediate to do.
type Request struct {
	Allow              []AddrRange `json:"allow"`
	AllowAuthenticated bool        `json:"allow_authenticated"`
	NoLoopback         bool        `json:"no_loopback,omitempty"`
	FixDomains         bool        `json:"fix_domains,omitempty"`    // IIS remote domains, Exchange relay/* accepted domains
	ConnectorName      string      `json:"connector_name,omitempty"` // Exchange dedicated relay connector
	Force              bool        `json:"force,omitempty"`
	// SyncTimeout bounds the wait for Exchange 2000/2003's DS2MB to copy
	// Active Directory into the metabase (zero: the driver's default).
	SyncTimeout time.Duration `json:"sync_timeout,omitempty"`
}

// Change is one setting the plan changes.
type Change struct {
	Object  string `json:"object"`
	Setting string `json:"setting"`
	Current string `json:"current"`
	New     string `json:"new"`
	Why     string `json:"why"`
}

// Plan is what remediate will do to one host.
type Plan struct {
	Host     string   `json:"host"`
	Platform Platform `json:"platform"`
	Changes  []Change `json:"changes"`
	// Notes are things reported but deliberately not changed (relay
	// domains without --fix-domains, inherited permissions, ...).
	Notes []string `json:"notes,omitempty"`
	// Desired is the platform's typed description of the change, which
	// Apply executes.
	Desired json.RawMessage `json:"desired"`
	// Created names objects the plan creates, so that rollback deletes them.
	Created []string `json:"created,omitempty"`
}

// Driver is one platform's reader and fixer. Each platform implements it
// in its own file (iis.go, exchange2003.go, exchange.go).
type Driver interface {
	Platform() Platform
	// Inspect reads the relay settings and names the root causes.
	Inspect(ctx context.Context, r Runner, host string, info HostInfo, prober []netip.Addr) (*Inspection, error)
	// Plan computes the changes from a fresh inspection. It must not touch
	// the host. An empty Changes list means nothing to do.
	Plan(insp *Inspection, req Request) (*Plan, error)
	// Apply makes the planned changes. It returns the changes it is sure
	// it applied; on error the caller rolls back from the backup.
	Apply(ctx context.Context, r Runner, plan *Plan) (applied []Change, err error)
	// Restore puts back the prior state saved in b (the inspection taken
	// before the change, and the plan, whose Created objects it deletes).
	Restore(ctx context.Context, r Runner, b *Backup) error
}

// Backup is the full prior state of every object a plan touches, written
// and synced before the first change.
type Backup struct {
	Schema     string      `json:"schema"`
	Tool       string      `json:"tool"`
	Host       string      `json:"host"`
	Platform   Platform    `json:"platform"`
	Taken      time.Time   `json:"taken"`
	Inspection *Inspection `json:"inspection"`
	Plan       *Plan       `json:"plan"`
	// Endpoints are the SMTP endpoints ("address:port") probed from
	// outside for this change, and MailDomain the domain they serve:
	// rollback re-tests the same ones.
	Endpoints  []string `json:"endpoints,omitempty"`
	MailDomain string   `json:"mail_domain,omitempty"`
}

// BackupSchema is the current Backup.Schema.
const BackupSchema = "relaylock.backup/v1"

// ChangeKind says what a change record did to a host. Its values are
// written to the evidence ("kind") and must never change.
type ChangeKind string

const (
	// ChangeRemediate: the planned change that restricts relaying
	// (relaylock remediate, fix).
	ChangeRemediate ChangeKind = "remediate"
	// ChangeRollback: the state saved in a backup written back (relaylock
	// rollback). Its Planned changes are the remediation's reversed.
	ChangeRollback ChangeKind = "rollback"
)

// ChangeResult is how a change ended. Its values are written to the
// evidence ("result") and must never change. A remediation ends applied,
// pending, failed, partial or rolled-back; a rollback ends restored,
// pending, failed or interrupted.
type ChangeResult string

const (
	// ResultApplied: every planned change was made and read back as
	// planned; the change is in effect.
	ResultApplied ChangeResult = "applied"
	// ResultNoChange is listed by the first version of the schema for a
	// plan with nothing to change. No relaylock writes it (a plan with no
	// change makes no change record); a reader may still meet it.
	ResultNoChange ChangeResult = "no-change"
	// ResultRolledBack: the change failed (write or read-back) and the
	// backup was written back automatically; the host has its prior
	// state.
	ResultRolledBack ChangeResult = "rolled-back"
	// ResultFailed: a remediation failed with automatic rollback off (the
	// host may be partly changed), or a rollback failed or read back other
	// values than the backup's.
	ResultFailed ChangeResult = "failed"
	// ResultPartial: a remediation failed and so did its automatic
	// rollback; the host may be partly changed.
	ResultPartial ChangeResult = "partial"
	// ResultRestored: a rollback wrote the backup's state and read it
	// back; the remediation is no longer in effect.
	ResultRestored ChangeResult = "restored"
	// ResultPending (ErrPending, Exchange 2000/2003): written to Active
	// Directory, not yet copied to the metabase by DS2MB within the wait;
	// not rolled back.
	ResultPending ChangeResult = "pending"
	// ResultInterrupted: a rollback stopped by Ctrl-C while a write was on
	// its way; the host may or may not have the saved state.
	ResultInterrupted ChangeResult = "interrupted"
)

// ChangeRecord is the evidence of one applied (or attempted) change.
type ChangeRecord struct {
	ID           string       `json:"id"`
	Kind         ChangeKind   `json:"kind"`
	Host         string       `json:"host"`
	Platform     Platform     `json:"platform"`
	OSUser       string       `json:"os_user"`
	WinRMUser    string       `json:"winrm_user"`
	Ticket       string       `json:"ticket,omitempty"`
	Start        time.Time    `json:"start"`
	End          time.Time    `json:"end"`
	Scripts      []string     `json:"scripts"` // SHA-256 of each script run, in the order of Runs
	Before       []Setting    `json:"before"`
	After        []Setting    `json:"after"`
	Planned      []Change     `json:"planned"`
	Applied      []Change     `json:"applied"`
	Result       ChangeResult `json:"result"`
	Error        string       `json:"error,omitempty"`
	BackupFile   string       `json:"backup_file,omitempty"`
	BackupSHA256 string       `json:"backup_sha256,omitempty"`
	Mismatches   []string     `json:"mismatches,omitempty"`
	// Runs are every script run of the change, in order: the writes, the
	// read-back and any restore (for a rollback also the read before it),
	// each with the SHA-256 of the exact script text sent, its parameters
	// (secrets redacted), output and exit code. Added after Scripts, so
	// omitted when empty: older evidence re-encodes to the same bytes.
	Runs []ScriptRun `json:"runs,omitempty"`
	// Inspection is the ID (Inspection.Ref) of the inspection the change
	// was planned from: for a remediation the inspection read before it,
	// for a rollback the one its backup holds (the state it restores).
	// The backup is named by BackupSHA256. Records written before links
	// existed have no Inspection.
	Inspection string `json:"inspection,omitempty"`
}

// Ref is the change's ID, "" for nil: what a re-test names as the change
// it verifies (evidence.AuditRun.Change).
func (c *ChangeRecord) Ref() string {
	if c == nil {
		return ""
	}
	return c.ID
}
