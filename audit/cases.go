package audit

import (
	"fmt"
	"strings"
)

// Case is one row of the relay test matrix (docs/relay-probes.md §8). From and
// To are templates for the argument after "MAIL FROM:" and "RCPT TO:",
// angle brackets included (some tests leave them out on purpose).
//
// Placeholders:
//
//	{from}   the default sender: Options.From, or {u}@{P} (catch mode: the catcher's bounce address)
//	{u}      a random local part (NewToken), new for every test
//	{R}      another random label
//	{P}      Options.ProbeDomain
//	{L} {V}  local part and domain of the external recipient ({victim} = {L}@{V})
//	{T}      the target's mail domain ({target_domain})
//	{B}      the host name in the server's 220 banner ({banner_host})
//	{M}      the MX host name, only when it differs from {B}
//	{I}      the address literal content: "192.0.2.1" or "IPv6:2001:db8::1" (RFC 5321 §4.1.3)
//	{LO}     the loopback literal content of the same family
//	{pm}     "postmaster@{T}", or "postmaster" with no target domain (RFC 5321 §4.5.1)
//
// A test whose placeholders have no value (no banner host, an address
// target without a domain) or whose expansion breaks the RFC 5321
// §4.5.3.1 size limits is skipped with a reason.
type Case struct {
	ID    string
	Title string
	Kind  string // "control", "sender", "recipient", "session", "info"
	From  string
	To    string
	// Helo, if set, is the EHLO argument template (session variant 39);
	// such a test runs on its own connection.
	Helo string
	// Auth, if set, is a bogus AUTH exchange (AuthNTLMNull, AuthLogin,
	// AuthPlain, AuthCRAMGarbage) run before MAIL on the test's own
	// connection (session variant 41).
	Auth string
	// Info marks informational tests, which never set the verdict
	// (controls C2/C3, test 35, docs/relay-probes.md §8).
	Info bool
	// LocalForm marks recipient forms whose destination, read the plain
	// RFC 5321 way, is the server itself: a percent hack, double @ or bang
	// path at its own name, literal or domain, or an unqualified address
	// the server qualifies with its own domain. On a server that accepts
	// any local recipient (C2 accepted) their acceptance is ambiguous.
	LocalForm bool
	// Own names the server's own name that a LocalForm recipient ends at,
	// or, for an own-name control, the name it tests: OwnDomain ({T}),
	// OwnLiteral ([{I}]), OwnBanner ({B}) or OwnUnqualified (no domain:
	// the server qualifies it with its own). A LocalForm test is judged
	// against the control of its own name (aggregateEndpoint).
	Own string
	// TLS marks the tests rerun after STARTTLS (session variant 38).
	TLS bool
	// Nmap lists the nmap smtp-open-relay.nse test numbers this case
	// covers (docs/relay-probes.md §1).
	Nmap []int
}

const victim = "<{L}@{V}>"

// The server's own names a recipient form can end at (Case.Own). Each
// has its own accept-any-local control (docs/relay-probes.md §8, C2): a
// server may accept any local part at its address literal (IIS SMTP
// does, into its Drop folder) and validate them at its domain, or the
// other way round.
const (
	OwnDomain      = "domain"      // {T}: control C2
	OwnLiteral     = "literal"     // [{I}]: control C2I
	OwnBanner      = "banner"      // {B}: control C2B
	OwnUnqualified = "unqualified" // no domain: control C2U
)

// ownControl maps an own name to the ID of its accept-any-local control.
var ownControl = map[string]string{OwnDomain: "C2", OwnLiteral: "C2I", OwnBanner: "C2B", OwnUnqualified: "C2U"}

// matrix is the default test matrix, in the order it runs: controls,
// sender variants 1-12, recipient variants 13-35 (each also as "b" with
// the spoofed local sender {u}@{T} where §8 asks for it). It is unexported
// so that no caller can change the tests another run makes; Matrix hands
// out copies.
var matrix = buildMatrix()

// Matrix returns a copy of the default test matrix, in the order it runs.
// Changing the copy does not change what Run tests.
func Matrix() []Case { return append([]Case(nil), matrix...) }

// heloVariants are the opt-in EHLO-trust tests (§8 test 39,
// Options.HeloVariants).
var heloVariants = []Case{
	{ID: "E39a", Title: "EHLO with the target domain", Kind: "session", Helo: "{T}", From: "<{from}>", To: victim},
	{ID: "E39b", Title: "EHLO with the MX host name", Kind: "session", Helo: "{MH}", From: "<{from}>", To: victim},
	{ID: "E39c", Title: "EHLO localhost", Kind: "session", Helo: "localhost", From: "<{from}>", To: victim},
	{ID: "E39d", Title: "EHLO with the server's address literal", Kind: "session", Helo: "[{I}]", From: "<{from}>", To: victim},
}

// Bogus AUTH exchanges of the authVariants (§8 test 41).
const (
	AuthNTLMNull    = "ntlm-null-session" // NTLM with no user and no password (MS02-011, CVE-2002-0054)
	AuthLogin       = "login-made-up"     // AUTH LOGIN, an account that does not exist
	AuthPlain       = "plain-made-up"     // AUTH PLAIN, an account that does not exist
	AuthCRAMGarbage = "cram-md5-garbage"  // AUTH CRAM-MD5 answered with garbage (Nessus 10262)
)

// authVariants are the opt-in bogus-AUTH tests (§8 test 41,
// Options.AuthTests): MAIL and RCPT after an AUTH that must fail. A
// server that relays then treats a failed login as a login: an enabled
// Guest account on Exchange 5.5-2003 and IIS SMTP with relaying for
// authenticated clients, or the Windows 2000 SMTP null-session bug
// (docs/windows-relay.md §1.3). Each runs on its own connection, and is
// skipped when the server does not offer its mechanism.
var authVariants = []Case{
	{ID: "A41a", Title: "relay after AUTH NTLM as a null session (no user, no password)", Kind: "session", Auth: AuthNTLMNull, From: "<{from}>", To: victim, TLS: true},
	{ID: "A41b", Title: "relay after AUTH LOGIN with a made-up account", Kind: "session", Auth: AuthLogin, From: "<{from}>", To: victim, TLS: true},
	{ID: "A41c", Title: "relay after AUTH PLAIN with a made-up account", Kind: "session", Auth: AuthPlain, From: "<{from}>", To: victim, TLS: true},
	{ID: "A41d", Title: "relay after AUTH CRAM-MD5 answered with garbage", Kind: "session", Auth: AuthCRAMGarbage, From: "<{from}>", To: victim, TLS: true},
}

func buildMatrix() []Case {
	m := []Case{
		{ID: "C1", Title: "control: legitimate inbound mail to postmaster", Kind: "control", From: "<{from}>", To: "<{pm}>", TLS: true},
		{ID: "C1P", Title: "control: bare postmaster (RFC 5321 §4.5.1), for a host target whose name may not be a mail domain", Kind: "control", From: "<{from}>", To: "<postmaster>", Info: true, TLS: true},
		{ID: "C2", Title: "control: nonexistent local user (recipient validation)", Kind: "control", From: "<{from}>", To: "<{R}@{T}>", Info: true, Own: OwnDomain},
		{ID: "C2I", Title: "control: nonexistent local user at the server's address literal", Kind: "control", From: "<{from}>", To: "<{R}@[{I}]>", Info: true, Own: OwnLiteral, TLS: true},
		{ID: "C2B", Title: "control: nonexistent local user at the banner host", Kind: "control", From: "<{from}>", To: "<{R}@{B}>", Info: true, Own: OwnBanner},
		{ID: "C2U", Title: "control: nonexistent unqualified local user", Kind: "control", From: "<{from}>", To: "<{R}>", Info: true, Own: OwnUnqualified, TLS: true},
		{ID: "C3", Title: "control: unresolvable domain (accepts everything?)", Kind: "control", From: "<{from}>", To: "<{R}@{R}.invalid>", Info: true},

		{ID: "S1", Title: "null sender", Kind: "sender", From: "<>", To: victim, TLS: true, Nmap: []int{1}},
		{ID: "S2", Title: "plain third-party relay", Kind: "sender", From: "<{from}>", To: victim, TLS: true, Nmap: []int{2}},
		{ID: "S3", Title: "sender at the banner host name", Kind: "sender", From: "<{u}@{B}>", To: victim, Nmap: []int{3}},
		{ID: "S4", Title: "sender at the server's address literal", Kind: "sender", From: "<{u}@[{I}]>", To: victim, Nmap: []int{4}},
		{ID: "S5", Title: "spoofed local sender", Kind: "sender", From: "<{u}@{T}>", To: victim, TLS: true},
		{ID: "S6", Title: "spoofed postmaster of the target", Kind: "sender", From: "<postmaster@{T}>", To: victim},
		{ID: "S7", Title: "sender at the MX host name", Kind: "sender", From: "<{u}@{M}>", To: victim},
		{ID: "S8", Title: "sender at localhost", Kind: "sender", From: "<{u}@localhost>", To: victim},
		{ID: "S9", Title: "sender at the loopback literal", Kind: "sender", From: "<{u}@[{LO}]>", To: victim},
		{ID: "S10", Title: "unqualified sender", Kind: "sender", From: "<{u}>", To: victim},
		{ID: "S11", Title: "bang-path sender", Kind: "sender", From: "<{P}!{u}>", To: victim},
		{ID: "S12", Title: "sender at a nonexistent subdomain of the target", Kind: "sender", From: "<{u}@{R}.{T}>", To: victim},
	}
	rcpt := []Case{
		{ID: "R13", Title: "percent hack via address literal", To: "<{L}%{V}@[{I}]>", TLS: true, Nmap: []int{5}, LocalForm: true, Own: OwnLiteral},
		{ID: "R14", Title: "percent hack via banner host", To: "<{L}%{V}@{B}>", Nmap: []int{6}, LocalForm: true, Own: OwnBanner},
		{ID: "R15", Title: "percent hack via target domain", To: "<{L}%{V}@{T}>", LocalForm: true, Own: OwnDomain},
		{ID: "R16", Title: "quoted whole address", To: `<"{L}@{V}">`, TLS: true, Nmap: []int{7}, LocalForm: true, Own: OwnUnqualified},
		{ID: "R17", Title: "quoted percent, no domain", To: `<"{L}%{V}">`, Nmap: []int{8}, LocalForm: true, Own: OwnUnqualified},
		{ID: "R18", Title: "double @ at address literal", To: "<{L}@{V}@[{I}]>", Nmap: []int{9}, LocalForm: true, Own: OwnLiteral},
		{ID: "R19", Title: "quoted local part at address literal", To: `<"{L}@{V}"@[{I}]>`, Nmap: []int{10}, LocalForm: true, Own: OwnLiteral},
		{ID: "R20", Title: "double @ at banner host", To: "<{L}@{V}@{B}>", Nmap: []int{11}, LocalForm: true, Own: OwnBanner},
		{ID: "R21", Title: "double @ at target domain", To: "<{L}@{V}@{T}>", LocalForm: true, Own: OwnDomain},
		{ID: "R22", Title: "quoted local part at target domain", To: `<"{L}@{V}"@{T}>`, LocalForm: true, Own: OwnDomain},
		{ID: "R23", Title: "source route via address literal", To: "<@[{I}]:{L}@{V}>", TLS: true, Nmap: []int{12}},
		{ID: "R24", Title: "source route via banner host", To: "<@{B}:{L}@{V}>", Nmap: []int{13}},
		{ID: "R25", Title: "source route via target domain", To: "<@{T}:{L}@{V}>"},
		{ID: "R26", Title: "multi-hop source route", To: "<@{B},@{T}:{L}@{V}>"},
		{ID: "R27", Title: "bang path", To: "<{V}!{L}>", TLS: true, Nmap: []int{14}, LocalForm: true, Own: OwnUnqualified},
		{ID: "R28", Title: "bang path at address literal", To: "<{V}!{L}@[{I}]>", Nmap: []int{15}, LocalForm: true, Own: OwnLiteral},
		{ID: "R29", Title: "bang path at banner host", To: "<{V}!{L}@{B}>", Nmap: []int{16}, LocalForm: true, Own: OwnBanner},
		{ID: "R30", Title: "bang path at target domain", To: "<{V}!{L}@{T}>", LocalForm: true, Own: OwnDomain},
		{ID: "R31", Title: "recipient without angle brackets", To: "{L}@{V}"},
		{ID: "R32", Title: "trailing @", To: "<{L}@{V}@>"},
		{ID: "R33", Title: "unqualified percent local part", To: "<{L}%{V}>", LocalForm: true, Own: OwnUnqualified},
		{ID: "R34", Title: "trailing dot on the recipient domain", To: "<{L}@{V}.>"},
	}
	for _, r := range rcpt {
		r.Kind = "recipient"
		a := r
		a.From = "<{u}@[{I}]>"
		m = append(m, a)
	}
	for _, r := range rcpt {
		b := r
		b.ID += "b"
		b.Kind = "recipient"
		b.From = "<{u}@{T}>"
		b.Title += " (local sender)"
		b.Nmap = nil
		b.TLS = false
		m = append(m, b)
	}
	m = append(m, Case{ID: "R35", Title: "recipient at the server's own literal (local delivery)", Kind: "info",
		From: "<{u}@[{I}]>", To: "<{L}@[{I}]>", Info: true})
	return m
}

// caseByID finds a case of the matrix (or the EHLO or AUTH variants) by
// its ID.
var caseByID = func() map[string]Case {
	m := map[string]Case{}
	for _, list := range [][]Case{matrix, heloVariants, authVariants} {
		for _, c := range list {
			m[c.ID] = c
		}
	}
	return m
}()

// caseParams are the values of the placeholders for one test.
type caseParams struct {
	From, U, R, P, L, V, T, B, M, MH, I, LO string
}

func (cp caseParams) lookup(name string) (string, bool) {
	switch name {
	case "from":
		return cp.From, cp.From != ""
	case "u":
		return cp.U, cp.U != ""
	case "R":
		return cp.R, cp.R != ""
	case "P":
		return cp.P, cp.P != ""
	case "L":
		return cp.L, cp.L != ""
	case "V":
		return cp.V, cp.V != ""
	case "T":
		return cp.T, cp.T != ""
	case "B":
		return cp.B, cp.B != ""
	case "M":
		return cp.M, cp.M != ""
	case "MH":
		return cp.MH, cp.MH != ""
	case "I":
		return cp.I, cp.I != ""
	case "LO":
		return cp.LO, cp.LO != ""
	case "pm":
		if cp.T == "" {
			return "postmaster", true
		}
		return "postmaster@" + cp.T, true
	}
	return "", false
}

var placeholderWhy = map[string]string{
	"T": "needs the target's mail domain (give a domain, or Options.MailDomain)",
	"B": "needs the host name from the server's banner",
	"M": "the MX host name equals the banner host (same test as S3)",
	"I": "needs the server's address",
}

// expand fills a template. It reports the first placeholder without a
// value.
func expand(tmpl string, cp caseParams) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String(), nil
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			b.WriteString(tmpl)
			return b.String(), nil
		}
		name := tmpl[i+1 : i+j]
		v, ok := cp.lookup(name)
		if !ok {
			why := placeholderWhy[name]
			if why == "" {
				why = "no value for {" + name + "}"
			}
			return "", fmt.Errorf("%s", why)
		}
		b.WriteString(tmpl[:i])
		b.WriteString(v)
		tmpl = tmpl[i+j+1:]
	}
}

// RFC 5321 §4.5.3.1 size limits.
const (
	maxLocalPart   = 64
	maxDomain      = 255
	maxPath        = 256
	maxCommandLine = 512 // including CRLF
)

// checkPath checks an expanded MAIL/RCPT argument against RFC 5321
// §4.5.3.1: the path (inside the brackets, source route included) at most
// 256 octets, the mailbox's local part 64 and domain 255, and the command
// line 512 with CRLF. Deliberately odd forms (double @, bang paths) are
// split at the last "@" of the mailbox.
func checkPath(cmd, arg string) error {
	if n := len(cmd) + len(arg) + 2; n > maxCommandLine {
		return fmt.Errorf("command line of %d octets > %d: %w", n, maxCommandLine, ErrTooLong)
	}
	path := strings.TrimSuffix(strings.TrimPrefix(arg, "<"), ">")
	if len(path) > maxPath {
		return fmt.Errorf("path of %d octets > %d: %w", len(path), maxPath, ErrTooLong)
	}
	mbox := path
	if strings.HasPrefix(mbox, "@") {
		if _, after, ok := strings.Cut(mbox, ":"); ok {
			mbox = after
		}
	}
	local, domain := mbox, ""
	if i := strings.LastIndexByte(mbox, '@'); i >= 0 {
		local, domain = mbox[:i], mbox[i+1:]
	}
	if len(local) > maxLocalPart {
		return fmt.Errorf("local part of %d octets > %d: %w", len(local), maxLocalPart, ErrTooLong)
	}
	if len(domain) > maxDomain {
		return fmt.Errorf("domain of %d octets > %d: %w", len(domain), maxDomain, ErrTooLong)
	}
	return nil
}
