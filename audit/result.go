package audit

import "time"

// This file is the audit's result schema. It is part of the evidence file
// and of `relaylock audit --format json`: fields are added, never redefined
// or removed (README, "JSON schema").

// Verdict is the verdict of a target, an endpoint or the whole run.
type Verdict string

const (
	VerdictOpen         Verdict = "open"
	VerdictClosed       Verdict = "closed"
	VerdictInconclusive Verdict = "inconclusive"
	VerdictNoMail       Verdict = "no-mail" // RFC 7505 null MX
)

// Confirmation says how strong an open verdict is (docs/relay-probes.md §6, §8).
type Confirmation string

const (
	// ConfirmConfirmed: the relayed message arrived at the catcher.
	ConfirmConfirmed Confirmation = "confirmed"
	// ConfirmLikely: DATA got 354 for an external recipient.
	ConfirmLikely Confirmation = "likely"
	// ConfirmPotential: only RCPT was accepted (--depth rcpt, or an
	// accept-everything server).
	ConfirmPotential Confirmation = "potential"
)

// Outcome is the result of one test (docs/relay-probes.md §8, "Verdict rules").
type Outcome string

const (
	OutcomeOpenConfirmed Outcome = "open-confirmed" // token arrived at the catcher
	OutcomeOpenLikely    Outcome = "open-likely"    // DATA 354 (or "." accepted, delivery not checked)
	OutcomeOpenPotential Outcome = "open-potential" // RCPT 2xx, DATA not tried
	OutcomeSubmitted     Outcome = "submitted"      // --deliver: message accepted, check the mailbox
	OutcomeDenied        Outcome = "denied"         // RCPT refused: this form is closed
	OutcomeDeniedLate    Outcome = "denied-late"    // RCPT accepted, DATA or "." refused
	OutcomeNotDelivered  Outcome = "accepted-not-delivered"
	// OutcomeAcceptedAsLocal: a form that the server's own domain ends
	// (percent hack, double @ or bang path at its own name or literal,
	// or an unqualified address) was accepted by a server that accepts
	// any local recipient (control C2). That is what local delivery looks
	// like too, so it is not evidence of relaying; catch mode tells.
	OutcomeAcceptedAsLocal Outcome = "accepted-as-local"
	OutcomeBounced         Outcome = "bounced"        // accepted, then a bounce came back
	OutcomeSenderRefused   Outcome = "sender-refused" // MAIL refused: untested, not passed
	OutcomeAuthRequired    Outcome = "auth-required"  // 530 / 5.7.0 at MAIL or RCPT
	OutcomeAccepted        Outcome = "accepted"       // controls and informational tests
	OutcomeInconclusive    Outcome = "inconclusive"
	OutcomeSkipped         Outcome = "skipped" // not sent (verdict already settled, or no value for a placeholder)
)

// Result is one run of `relaylock audit`.
type Result struct {
	Start   time.Time      `json:"start"`
	End     time.Time      `json:"end"`
	Vantage Vantage        `json:"vantage"`
	Options OptionsSummary `json:"options"`
	Verdict Verdict        `json:"verdict"`
	Targets []TargetResult `json:"targets"`
}

// Vantage records where the probes came from.
type Vantage struct {
	// SourceAddrs are the local addresses the probe connections used.
	SourceAddrs []string  `json:"source_addrs"`
	Hostname    string    `json:"hostname,omitempty"`
	UTC         time.Time `json:"utc"`
	LocalOffset string    `json:"local_offset"` // e.g. "+01:00"
}

// OptionsSummary records the settings that shaped the run (no secrets).
type OptionsSummary struct {
	From        string   `json:"from"`
	To          string   `json:"to"`
	ProbeDomain string   `json:"probe_domain"`
	HeloName    string   `json:"helo_name"`
	Depth       string   `json:"depth"` // "rcpt", "data", "deliver" or "catch"
	Ports       []int    `json:"ports"`
	DNSServers  []string `json:"dns_servers,omitempty"`
	AllTests    bool     `json:"all_tests,omitempty"`
	CatchDomain string   `json:"catch_domain,omitempty"`
}

// TargetResult is the result for one TARGET argument.
type TargetResult struct {
	Target string `json:"target"` // as the operator gave it
	// Domain is the A-label form of the domain or host name, empty for an
	// address target.
	Domain    string           `json:"domain,omitempty"`
	Kind      string           `json:"kind"` // "domain", "host" or "address"
	Verdict   Verdict          `json:"verdict"`
	Reason    string           `json:"reason,omitempty"`
	NullMX    bool             `json:"null_mx,omitempty"`
	MX        []MXHost         `json:"mx,omitempty"`
	DNS       []DNSQuery       `json:"dns,omitempty"`
	Endpoints []EndpointResult `json:"endpoints"`
	// Triggers lists, for an open target, "host address:port/tls test-id"
	// strings of every test that found it open.
	Triggers []string `json:"triggers,omitempty"`
	// DNSNotes are the resolver's Resolution.Notes: DNS findings worth
	// reporting, such as a null MX published with other MX records
	// (RFC 7505 §3) or a domain that is an alias.
	DNSNotes []string `json:"dns_notes,omitempty"`
	// Client and WinRMHost come from a --targets CSV file: the client the
	// domain belongs to and the Windows host to remediate it on.
	Client    string `json:"client,omitempty"`
	WinRMHost string `json:"winrm_host,omitempty"`
}

// MXHost is one mail exchanger of a domain, in preference order.
type MXHost struct {
	Host       string   `json:"host"`
	Preference int      `json:"preference"`
	Implicit   bool     `json:"implicit,omitempty"` // RFC 5321 §5.1: no MX, the domain itself
	CNAMEs     []string `json:"cnames,omitempty"`   // chain followed from Host
	Addresses  []string `json:"addresses"`
	Error      string   `json:"error,omitempty"`

	// EqualPreference is set when another MX host has the same
	// preference: senders pick among them at random (RFC 5321 §5.1), so
	// every one of them is probed; they are listed by name.
	EqualPreference bool `json:"equal_preference,omitempty"`
}

// DNSQuery is one DNS question and its answer, kept as evidence.
type DNSQuery struct {
	Time      time.Time `json:"time"`
	Server    string    `json:"server"`
	Transport string    `json:"transport"` // "udp" or "tcp"
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	Rcode     string    `json:"rcode,omitempty"`
	Truncated bool      `json:"truncated,omitempty"`
	Answers   []string  `json:"answers,omitempty"` // RR strings in presentation format
	RTT       Duration  `json:"rtt"`
	Error     string    `json:"error,omitempty"`
}

// The TLS modes of an endpoint (EndpointResult.TLS). They are words of
// the evidence and the JSON output and must never change.
const (
	TLSNone     = "none"     // plain SMTP (STARTTLS not used)
	TLSStartTLS = "starttls" // the tests rerun after STARTTLS (RFC 3207)
	TLSImplicit = "implicit" // TLS from the first byte (port 465, RFC 8314)
)

// EndpointResult is the result for one (MX host, address, port, TLS state).
type EndpointResult struct {
	MXHost     string `json:"mx_host"`
	Preference int    `json:"preference"`
	Address    string `json:"address"`
	Port       int    `json:"port"`
	// TLS is TLSNone, TLSStartTLS or TLSImplicit.
	TLS          string       `json:"tls"`
	Verdict      Verdict      `json:"verdict"`
	Reason       string       `json:"reason,omitempty"`
	Confirmation Confirmation `json:"confirmation,omitempty"`
	Banner       string       `json:"banner,omitempty"`
	BannerHost   string       `json:"banner_host,omitempty"`
	Extensions   []string     `json:"extensions,omitempty"`
	// AcceptAll is set when control C2 or C3 showed that the server
	// accepts recipients it cannot have (no recipient validation).
	AcceptAll bool `json:"accept_all,omitempty"`
	// Findings are observations that do not make the endpoint open, such
	// as an accept-everything server that delivered nothing in catch mode
	// (a discard or backscatter risk).
	Findings    []string     `json:"findings,omitempty"`
	Triggers    []string     `json:"triggers,omitempty"` // test IDs that found it open
	Tests       []TestResult `json:"tests"`
	Transcripts []Transcript `json:"transcripts"`
	TLSInfo     *TLSInfo     `json:"tls_info,omitempty"`
	Connections int          `json:"connections"`
	RoundTrips  int          `json:"round_trips"`
	Commands    int          `json:"commands"`
	Start       time.Time    `json:"start"`
	End         time.Time    `json:"end"`
}

// TestResult is the outcome of one test of the matrix on one endpoint.
type TestResult struct {
	ID    string `json:"id"` // "C1", "S2", "R13", ...
	Title string `json:"title"`
	Kind  string `json:"kind"` // "control", "sender", "recipient", "session", "info"
	Helo  string `json:"helo,omitempty"`
	// Auth is the bogus AUTH exchange of an A41 test and AuthReply the
	// server's last answer to it (235 means it took the failed login).
	Auth      string  `json:"auth,omitempty"`
	AuthReply *Reply  `json:"auth_reply,omitempty"`
	MailFrom  string  `json:"mail_from"`
	RcptTo    string  `json:"rcpt_to"`
	Outcome   Outcome `json:"outcome"`
	Reason    string  `json:"reason,omitempty"`
	// Reply is the reply that decided the outcome.
	Reply *Reply `json:"reply,omitempty"`
	// Conn is the index into EndpointResult.Transcripts of the connection
	// the test ran on.
	Conn  int    `json:"conn"`
	Token string `json:"token,omitempty"` // catch and deliver modes
	// Greylisted is the server's first answer when the test was
	// greylisted and retried with the same sender, recipient and source
	// address; Attempts counts the tries (both attempts are in the
	// transcripts).
	Greylisted *Reply `json:"greylisted,omitempty"`
	Attempts   int    `json:"attempts,omitempty"`
	// Catch holds what the catcher received for Token, if anything.
	Catch *CatchEvidence `json:"catch,omitempty"`
}

// Reply is one SMTP reply, possibly multi-line (RFC 5321 §4.2.1).
type Reply struct {
	Code     int      `json:"code"`
	Enhanced string   `json:"enhanced,omitempty"` // RFC 3463 "x.y.z"
	Lines    []string `json:"lines"`              // text after the code and separator
}

// Transcript is every line of one connection.
type Transcript struct {
	Conn   int              `json:"conn"`
	Local  string           `json:"local,omitempty"`
	Remote string           `json:"remote"`
	Start  time.Time        `json:"start"`
	End    time.Time        `json:"end"`
	Lines  []TranscriptLine `json:"lines"`
	// Truncated counts lines that were dropped to bound memory.
	Truncated int `json:"truncated,omitempty"`
}

// TranscriptLine is one line sent ("C"), received ("S") or an event ("*",
// such as "connected", "TLS handshake", "connection closed").
type TranscriptLine struct {
	T    time.Time `json:"t"`
	Dir  string    `json:"dir"`
	Text string    `json:"text"`
}

// TLSInfo describes a TLS session (STARTTLS or implicit). The certificate
// is recorded, not required to verify.
type TLSInfo struct {
	Version      string     `json:"version"`
	CipherSuite  string     `json:"cipher_suite"`
	ServerName   string     `json:"server_name,omitempty"`
	Verified     bool       `json:"verified"`
	VerifyError  string     `json:"verify_error,omitempty"`
	Certificates []CertInfo `json:"certificates,omitempty"`
}

// CertInfo is one certificate of the peer's chain.
type CertInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	DNSNames  []string  `json:"dns_names,omitempty"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	SHA256    string    `json:"sha256"`
}

// CatchEvidence is what the built-in catcher received for a token.
type CatchEvidence struct {
	Arrived    bool      `json:"arrived"`
	Bounce     bool      `json:"bounce,omitempty"` // a DSN for the test came back
	Time       time.Time `json:"time,omitempty"`
	RemoteAddr string    `json:"remote_addr,omitempty"` // who connected to the catcher
	Helo       string    `json:"helo,omitempty"`
	MailFrom   string    `json:"mail_from,omitempty"`
	RcptTo     []string  `json:"rcpt_to,omitempty"`
	Received   []string  `json:"received,omitempty"` // Received: chain, top first
	Headers    string    `json:"headers,omitempty"`  // header section, bounded
}
