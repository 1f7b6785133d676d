package remediate

import (
	"context"
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

// ChangeRecord is the evidence of one applied (or attempted) change.
type ChangeRecord struct {
	ID           string    `json:"id"`
	Kind         string    `json:"kind"` // "remediate" or "rollback"
	Host         string    `json:"host"`
	Platform     Platform  `json:"platform"`
	OSUser       string    `json:"os_user"`
	WinRMUser    string    `json:"winrm_user"`
	Ticket       string    `json:"ticket,omitempty"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Scripts      []string  `json:"scripts"` // SHA-256 of each script run, in the order of Runs
	Before       []Setting `json:"before"`
	After        []Setting `json:"after"`
	Planned      []Change  `json:"planned"`
	Applied      []Change  `json:"applied"`
	Result       string    `json:"result"` // "applied", "no-change", "rolled-back", "failed", "partial", "restored", "pending" (ErrPending: not rolled back), "interrupted" (a rollback stopped by Ctrl-C before it was known to be done)
	Error        string    `json:"error,omitempty"`
	BackupFile   string    `json:"backup_file,omitempty"`
	BackupSHA256 string    `json:"backup_sha256,omitempty"`
	Mismatches   []string  `json:"mismatches,omitempty"`
	// Runs are every script run of the change, in order: the writes, the
	// read-back and any restore (for a rollback also the read before it),
	// each with the SHA-256 of the exact script text sent, its parameters
	// (secrets redacted), output and exit code. Added after Scripts, so
	// omitted when empty: older evidence re-encodes to the same bytes.
	Runs []ScriptRun `json:"runs,omitempty"`
}
