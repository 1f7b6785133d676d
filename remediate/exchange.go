package remediate

// Exchange 2007 .. Subscription Edition: receive connectors, their
// ms-Exch-SMTP-Accept-Any-Recipient permissions and accepted domains
// (docs/windows-relay.md section 3). The scripts are templates/powershell/
// exchange-read.ps1 and exchange-write.ps1.
//
// One Go definition per wire format, shared with the lab
// (internal/lab/exchange.go) so that script output, lab and driver cannot
// drift apart:
//   - exchange-read prints the records that EncodeExchangeState builds and
//     decodeExchangeRead parses (record and field names are listed in the
//     script's header);
//   - exchange-write takes the parameters that EncodeExchangeOps builds and
//     DecodeExchangeOps parses (listed in that script's header).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// Script names of the Exchange platform.
const (
	ExchangeReadScript  = "exchange-read"
	ExchangeWriteScript = "exchange-write"
)

// Well-known names and SIDs.
const (
	// AnonymousLogonSID is NT AUTHORITY\ANONYMOUS LOGON; its name is
	// localized, the SID is not (docs/windows-relay.md 3.2, [S39]).
	AnonymousLogonSID = "S-1-5-7"
	// AuthenticatedUsersSID is NT AUTHORITY\Authenticated Users, granted
	// Accept-Any-Recipient by the ExchangeUsers permission group [S33].
	AuthenticatedUsersSID = "S-1-5-11"
	// RightAcceptAnyRecipient is the extended right that lets a sender
	// relay through a receive connector [S33].
	RightAcceptAnyRecipient = "ms-Exch-SMTP-Accept-Any-Recipient"
	// DefaultRelayConnectorName is the dedicated connector relaylock
	// creates for the allowed clients unless Request.ConnectorName is set.
	DefaultRelayConnectorName = "relaylock Relay"
	// RelayConnectorComment is the Comment relaylock gives the connector
	// it creates (New-ReceiveConnector -Comment): it is how a later run
	// knows the connector is relaylock's to reconfigure. A connector is
	// relaylock's when its Comment starts with RelayConnectorMarker.
	RelayConnectorComment = RelayConnectorMarker + " dedicated relay connector for the allowed clients; relaylock remediate reconfigures it and relaylock rollback removes it."
	RelayConnectorMarker  = "[relaylock]"
)

// ExchangeState is everything exchange-read reports about one server.
type ExchangeState struct {
	Server string `json:"server"`
	// Loader says how the Exchange cmdlets were loaded: "present",
	// "remote-explicit" (New-PSSession with the second-hop credential +
	// Import-PSSession, 2010+), "remote" (RemoteExchange.ps1 and
	// Connect-ExchangeServer), "snapin" (the bare snap-in on 2010+: no
	// writes without --force), "snapin-2007-netonly" (2007 behind a runas
	// /netonly logon), "snapin-2007", "edge".
	Loader string `json:"loader"`
	// DomainController is the AD domain controller the read used
	// (-DomainController, or the OriginatingServer of the first read);
	// later scripts of the run are pinned to it.
	DomainController string `json:"domain_controller,omitempty"`
	AnonymousSID     string `json:"anonymous_sid"`
	AnonymousName    string `json:"anonymous_name"` // localized
	// RoleAware is true when connectors have a TransportRole (2013+).
	RoleAware  bool                     `json:"role_aware"`
	Connectors []ExchangeConnector      `json:"connectors"`
	Domains    []ExchangeAcceptedDomain `json:"accepted_domains"`
	Warnings   []string                 `json:"warnings,omitempty"`
}

// ExchangeConnector is one receive connector.
type ExchangeConnector struct {
	Identity         string        `json:"identity"` // SERVER\Name
	Name             string        `json:"name"`
	Server           string        `json:"server"`
	TransportRole    string        `json:"transport_role,omitempty"` // FrontendTransport, HubTransport; "" before 2013
	Enabled          bool          `json:"enabled"`
	Bindings         []string      `json:"bindings"`
	RemoteIPRanges   []string      `json:"remote_ip_ranges"`
	AuthMechanism    []string      `json:"auth_mechanism"`
	PermissionGroups []string      `json:"permission_groups"`
	AnyRecipient     []ExchangeACE `json:"accept_any_recipient"`
	// Comment is the connector's administrator note; RelayConnectorMarker
	// at its start marks the connector relaylock created.
	Comment string `json:"comment,omitempty"`
}

// ExchangeACE is one non-deny ACE granting ms-Exch-SMTP-Accept-Any-Recipient.
type ExchangeACE struct {
	User      string `json:"user"`
	SID       string `json:"sid,omitempty"`
	Inherited bool   `json:"inherited"`
}

// ExchangeAcceptedDomain is one accepted domain.
type ExchangeAcceptedDomain struct {
	Name       string `json:"name"`
	DomainName string `json:"domain_name"`
	DomainType string `json:"domain_type"` // Authoritative, InternalRelay, ExternalRelay
	Default    bool   `json:"default"`
}

// IsAnonymous reports whether the ACE names ANONYMOUS LOGON: by SID, or by
// the (localized) name the host translated S-1-5-7 to when the SID could
// not be read.
func (a ExchangeACE) IsAnonymous(anonName string) bool {
	if a.SID != "" {
		return a.SID == AnonymousLogonSID
	}
	return anonName != "" && strings.EqualFold(a.User, anonName)
}

func (a ExchangeACE) String() string {
	s := a.User
	if a.SID != "" {
		s += " [" + a.SID + "]"
	}
	if a.Inherited {
		s += " (inherited)"
	}
	return s
}

// HasAnonymousRelay reports whether the connector grants
// Accept-Any-Recipient to ANONYMOUS LOGON; explicitOnly ignores inherited ACEs.
func (c ExchangeConnector) HasAnonymousRelay(anonName string, explicitOnly bool) bool {
	for _, a := range c.AnyRecipient {
		if a.IsAnonymous(anonName) && (!explicitOnly || !a.Inherited) {
			return true
		}
	}
	return false
}

// HasAuth reports whether AuthMechanism contains m (case-insensitive).
func (c ExchangeConnector) HasAuth(m string) bool { return exContainsFold(c.AuthMechanism, m) }

// HasGroup reports whether PermissionGroups contains g (case-insensitive).
func (c ExchangeConnector) HasGroup(g string) bool { return exContainsFold(c.PermissionGroups, g) }

// Ports returns the TCP ports the connector is bound to.
func (c ExchangeConnector) Ports() []int {
	var ps []int
	for _, b := range c.Bindings {
		if _, p, ok := exSplitBinding(b); ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// Ranges parses RemoteIPRanges; entries that do not parse are returned
// separately (they are treated as "anything" by callers that must be safe).
func (c ExchangeConnector) Ranges() (ok []AddrRange, bad []string) {
	for _, s := range c.RemoteIPRanges {
		r, err := ParseExchangeIPRange(s)
		if err != nil {
			bad = append(bad, s)
			continue
		}
		ok = append(ok, r)
	}
	return ok, bad
}

// ParseExchangeIPRange parses a RemoteIPRanges entry in the forms
// Set-ReceiveConnector accepts [S32]: an address, FIRST-LAST, a CIDR
// prefix, and the older address(mask) form, e.g.
// "192.168.1.0(255.255.255.0)" (contiguous IPv4 masks only).
func ParseExchangeIPRange(s string) (AddrRange, error) {
	t := strings.TrimSpace(s)
	if ip, mask, ok := strings.Cut(t, "("); ok && strings.HasSuffix(mask, ")") {
		a, err1 := netip.ParseAddr(strings.TrimSpace(ip))
		m, err2 := netip.ParseAddr(strings.TrimSpace(strings.TrimSuffix(mask, ")")))
		if err1 != nil || err2 != nil || !a.Is4() || !m.Is4() {
			return AddrRange{}, fmt.Errorf("%q: %w", s, ErrAllowSyntax)
		}
		mb := m.As4()
		bits := 0
		v := uint32(mb[0])<<24 | uint32(mb[1])<<16 | uint32(mb[2])<<8 | uint32(mb[3])
		for v&0x80000000 != 0 {
			bits++
			v <<= 1
		}
		if v != 0 {
			return AddrRange{}, fmt.Errorf("%q: mask is not contiguous: %w", s, ErrAllowSyntax)
		}
		return ParseAddrRange(netip.PrefixFrom(a, bits).Masked().String())
	}
	return ParseAddrRange(t)
}

// MatchSize returns the size of the smallest RemoteIPRanges entry holding
// a, or nil when none does: Exchange uses the connector with "the most
// specific match to the connecting server's IP address" [S33].
func (c ExchangeConnector) MatchSize(a netip.Addr) *big.Int {
	rs, _ := c.Ranges()
	var best *big.Int
	for _, r := range rs {
		if r.Contains(a) {
			if s := r.Size(); best == nil || s.Cmp(best) < 0 {
				best = s
			}
		}
	}
	return best
}

// EffectiveConnector returns the enabled connector bound to port whose
// RemoteIPRanges match a most specifically [S33], or nil. Between equally
// specific ranges a binding to a specific local address wins over a
// wildcard one (0.0.0.0, [::]); this tie-break is inferred from socket
// semantics, UNVERIFIED on Exchange (the lab treats the server as
// single-homed, so every binding on the port matches). Remaining ties go
// to the identity that sorts first (Exchange refuses identical
// binding+range pairs).
func (s *ExchangeState) EffectiveConnector(a netip.Addr, port int) *ExchangeConnector {
	var best *ExchangeConnector
	var bestSize *big.Int
	bestSpecific := false
	for i := range s.Connectors {
		c := &s.Connectors[i]
		if !c.Enabled || !exContainsInt(c.Ports(), port) {
			continue
		}
		sz := c.MatchSize(a)
		if sz == nil {
			continue
		}
		spec := c.specificBinding(port)
		better := best == nil || sz.Cmp(bestSize) < 0
		if !better && sz.Cmp(bestSize) == 0 {
			better = (spec && !bestSpecific) || (spec == bestSpecific && strings.ToLower(c.Identity) < strings.ToLower(best.Identity))
		}
		if better {
			best, bestSize, bestSpecific = c, sz, spec
		}
	}
	return best
}

// specificBinding reports whether the connector binds port on a specific
// local address rather than 0.0.0.0 or [::].
func (c ExchangeConnector) specificBinding(port int) bool {
	for _, b := range c.Bindings {
		ip, p, ok := exSplitBinding(b)
		if ok && p == port && ip != "0.0.0.0" && ip != "::" {
			return true
		}
	}
	return false
}

// exSplitBinding splits "0.0.0.0:25" or "[::]:25".
func exSplitBinding(b string) (ip string, port int, ok bool) {
	b = strings.TrimSpace(b)
	i := strings.LastIndex(b, ":")
	if i < 0 {
		return "", 0, false
	}
	p, err := strconv.Atoi(b[i+1:])
	if err != nil {
		return "", 0, false
	}
	return strings.Trim(b[:i], "[]"), p, true
}

// Connector returns the connector with the identity (case-insensitive).
func (s *ExchangeState) Connector(identity string) *ExchangeConnector {
	for i := range s.Connectors {
		if strings.EqualFold(s.Connectors[i].Identity, identity) {
			return &s.Connectors[i]
		}
	}
	return nil
}

// Domain returns the accepted domain with the name (case-insensitive).
func (s *ExchangeState) Domain(name string) *ExchangeAcceptedDomain {
	for i := range s.Domains {
		if strings.EqualFold(s.Domains[i].Name, name) {
			return &s.Domains[i]
		}
	}
	return nil
}

// Normalize sorts connectors, ACEs and domains so that the state, its
// JSON and its Settings rows are deterministic.
func (s *ExchangeState) Normalize() {
	sort.SliceStable(s.Connectors, func(i, j int) bool {
		return strings.ToLower(s.Connectors[i].Identity) < strings.ToLower(s.Connectors[j].Identity)
	})
	for i := range s.Connectors {
		a := s.Connectors[i].AnyRecipient
		sort.SliceStable(a, func(i, j int) bool { return a[i].String() < a[j].String() })
	}
	sort.SliceStable(s.Domains, func(i, j int) bool {
		return strings.ToLower(s.Domains[i].Name) < strings.ToLower(s.Domains[j].Name)
	})
}

// ---- exchange-read records -------------------------------------------------

// EncodeExchangeState builds the records exchange-read prints for s, in
// the script's order. The lab uses it to answer exchange-read, so the
// driver's decoder is tested against exactly this format.
func EncodeExchangeState(s *ExchangeState) []psframe.Record {
	var recs []psframe.Record
	for _, w := range s.Warnings {
		recs = append(recs, *psframe.NewRecord("warning").Set("message", w))
	}
	recs = append(recs, *psframe.NewRecord("exinfo").Set("server", s.Server).Set("loader", s.Loader).
		Set("anon_sid", s.AnonymousSID).Set("anon_name", s.AnonymousName).Set("dc", s.DomainController))
	for _, c := range s.Connectors {
		r := psframe.NewRecord("connector").Set("id", c.Identity).Set("name", c.Name).Set("server", c.Server)
		if s.RoleAware {
			r.Set("role", c.TransportRole)
		} else {
			r.SetNull("role")
		}
		r.Set("enabled", exBool(c.Enabled)).SetList("bindings", c.Bindings).SetList("ranges", c.RemoteIPRanges).
			SetList("auth", c.AuthMechanism).SetList("groups", c.PermissionGroups).Set("comment", c.Comment)
		recs = append(recs, *r)
		for _, a := range c.AnyRecipient {
			ar := psframe.NewRecord("ace").Set("id", c.Identity).Set("user", a.User)
			if a.SID == "" {
				ar.SetNull("sid")
			} else {
				ar.Set("sid", a.SID)
			}
			recs = append(recs, *ar.Set("inherited", exBool(a.Inherited)))
		}
	}
	for _, d := range s.Domains {
		recs = append(recs, *psframe.NewRecord("domain").Set("name", d.Name).Set("domain", d.DomainName).
			Set("type", d.DomainType).Set("default", exBool(d.Default)))
	}
	return recs
}

// ErrExchangeRead reports exchange-read output that does not describe a server.
var ErrExchangeRead = errors.New("unexpected exchange-read output")

func decodeExchangeRead(out *psframe.Output) (*ExchangeState, error) {
	info, ok := out.First("exinfo")
	if !ok {
		return nil, fmt.Errorf("%w: no exinfo record", ErrExchangeRead)
	}
	s := &ExchangeState{Server: info.Str("server"), Loader: info.Str("loader"),
		AnonymousSID: info.Str("anon_sid"), AnonymousName: info.Str("anon_name"), DomainController: info.Str("dc")}
	for _, w := range out.Of("warning") {
		s.Warnings = append(s.Warnings, w.Str("message"))
	}
	idx := map[string]int{}
	for _, r := range out.Of("connector") {
		en, err := r.Bool("enabled")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrExchangeRead, err)
		}
		c := ExchangeConnector{Identity: r.Str("id"), Name: r.Str("name"), Server: r.Str("server"), Enabled: en,
			Bindings: r.List("bindings"), RemoteIPRanges: r.List("ranges"),
			AuthMechanism: r.List("auth"), PermissionGroups: r.List("groups"), Comment: r.Str("comment")}
		if role, ok := r.Get("role"); ok {
			s.RoleAware = true
			c.TransportRole = role
		}
		if c.Identity == "" {
			return nil, fmt.Errorf("%w: connector without identity", ErrExchangeRead)
		}
		idx[strings.ToLower(c.Identity)] = len(s.Connectors)
		s.Connectors = append(s.Connectors, c)
	}
	// The Exchange server name is what connector identities start with;
	// it normally equals COMPUTERNAME (exinfo's server), but trust the
	// connectors when they agree on another one.
	if len(s.Connectors) > 0 {
		srv := s.Connectors[0].Server
		for _, c := range s.Connectors {
			if !strings.EqualFold(c.Server, srv) {
				srv = ""
			}
		}
		if srv != "" {
			s.Server = srv
		}
	}
	for _, r := range out.Of("ace") {
		i, ok := idx[strings.ToLower(r.Str("id"))]
		if !ok {
			return nil, fmt.Errorf("%w: permission for unknown connector %q", ErrExchangeRead, r.Str("id"))
		}
		inh, err := r.Bool("inherited")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrExchangeRead, err)
		}
		s.Connectors[i].AnyRecipient = append(s.Connectors[i].AnyRecipient,
			ExchangeACE{User: r.Str("user"), SID: r.Str("sid"), Inherited: inh})
	}
	for _, r := range out.Of("domain") {
		def, err := r.Bool("default")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrExchangeRead, err)
		}
		s.Domains = append(s.Domains, ExchangeAcceptedDomain{Name: r.Str("name"), DomainName: r.Str("domain"),
			DomainType: r.Str("type"), Default: def})
	}
	s.Normalize()
	return s, nil
}

// ---- exchange-write operations ---------------------------------------------

// Operation kinds of exchange-write.
const (
	OpNewConnector    = "new-connector"
	OpSetConnector    = "set-connector"
	OpRemoveConnector = "remove-connector"
	OpAddACE          = "add-ace"
	OpRemoveACE       = "remove-ace"
	OpSetDomain       = "set-domain"
	OpNewDomain       = "new-domain"
	OpRemoveDomain    = "remove-domain"
)

// Fields set-connector can set (ExchangeOp.Set).
const (
	FieldEnabled  = "enabled"
	FieldBindings = "bindings"
	FieldRanges   = "ranges"
	FieldAuth     = "auth"
	FieldGroups   = "groups"
)

// ExchangeOp is one exchange-write operation. Every field travels as a
// psframe parameter (data), see EncodeExchangeOps.
type ExchangeOp struct {
	Kind       string   `json:"kind"`
	Identity   string   `json:"identity,omitempty"` // connector identity or accepted domain name
	Name       string   `json:"name,omitempty"`
	Server     string   `json:"server,omitempty"`
	Role       string   `json:"role,omitempty"`
	Set        []string `json:"set,omitempty"`
	Enabled    bool     `json:"enabled,omitempty"`
	Bindings   []string `json:"bindings,omitempty"`
	Ranges     []string `json:"ranges,omitempty"`
	Auth       []string `json:"auth,omitempty"`
	Groups     []string `json:"groups,omitempty"`
	User       string   `json:"user,omitempty"`
	SID        string   `json:"sid,omitempty"`
	DomainName string   `json:"domain_name,omitempty"`
	DomainType string   `json:"domain_type,omitempty"`
	// Comment: new-connector's -Comment (RelayConnectorComment).
	Comment string `json:"comment,omitempty"`
}

// EncodeExchangeOps turns operations into exchange-write parameters.
func EncodeExchangeOps(ops []ExchangeOp) map[string]string {
	p := map[string]string{"ops": strconv.Itoa(len(ops))}
	for i, op := range ops {
		pre := "op" + strconv.Itoa(i+1) + "_"
		put := func(k, v string) {
			if v != "" {
				p[pre+k] = v
			}
		}
		put("kind", op.Kind)
		put("identity", op.Identity)
		put("name", op.Name)
		put("server", op.Server)
		put("role", op.Role)
		put("set", strings.Join(op.Set, "\n"))
		if op.Kind == OpSetConnector && exContainsFold(op.Set, FieldEnabled) {
			put("enabled", exBool(op.Enabled))
		}
		put("bindings", strings.Join(op.Bindings, "\n"))
		put("ranges", strings.Join(op.Ranges, "\n"))
		put("auth", strings.Join(op.Auth, "\n"))
		put("groups", strings.Join(op.Groups, "\n"))
		put("user", op.User)
		put("sid", op.SID)
		put("domain", op.DomainName)
		put("type", op.DomainType)
		put("comment", op.Comment)
	}
	return p
}

// ErrExchangeOps reports exchange-write parameters that do not describe operations.
var ErrExchangeOps = errors.New("malformed exchange-write parameters")

// DecodeExchangeOps reverses EncodeExchangeOps, reading parameters the way
// exchange-write does (lists split on newlines, items trimmed, empty items
// dropped). The lab uses it.
func DecodeExchangeOps(p map[string]string) ([]ExchangeOp, error) {
	n, err := strconv.Atoi(strings.TrimSpace(p["ops"]))
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%w: ops=%q", ErrExchangeOps, p["ops"])
	}
	list := func(v string) []string {
		var out []string
		for _, x := range strings.Split(v, "\n") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
		return out
	}
	ops := make([]ExchangeOp, 0, n)
	for i := 1; i <= n; i++ {
		pre := "op" + strconv.Itoa(i) + "_"
		op := ExchangeOp{Kind: p[pre+"kind"], Identity: p[pre+"identity"], Name: p[pre+"name"],
			Server: p[pre+"server"], Role: p[pre+"role"], Set: list(p[pre+"set"]),
			Bindings: list(p[pre+"bindings"]), Ranges: list(p[pre+"ranges"]), Auth: list(p[pre+"auth"]),
			Groups: list(p[pre+"groups"]), User: p[pre+"user"], SID: p[pre+"sid"],
			DomainName: p[pre+"domain"], DomainType: p[pre+"type"], Comment: p[pre+"comment"]}
		if v, ok := p[pre+"enabled"]; ok {
			b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(v)))
			if err != nil {
				return nil, fmt.Errorf("%w: %senabled=%q", ErrExchangeOps, pre, v)
			}
			op.Enabled = b
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// ---- settings rows -------------------------------------------------------

// Setting names of a receive connector (Object "Receive connector <identity>")
// and of an accepted domain (Object "Accepted domain <name>").
const (
	SetEnabled               = "Enabled"
	SetTransportRole         = "TransportRole"
	SetBindings              = "Bindings"
	SetRemoteIPRanges        = "RemoteIPRanges"
	SetAuthMechanism         = "AuthMechanism"
	SetPermissionGroups      = "PermissionGroups"
	SetAnyRecipient          = "Accept-Any-Recipient"             // grantees set on the connector
	SetAnyRecipientInherited = "Accept-Any-Recipient (inherited)" // grantees inherited from a parent
	SetDomainName            = "DomainName"
	SetDomainType            = "DomainType"
	SetDomainDefault         = "Default"
)

func connectorObject(identity string) string { return "Receive connector " + identity }
func domainObject(name string) string        { return "Accepted domain " + name }

// exCanonRanges writes RemoteIPRanges canonically: parsed entries as
// AddrRange.String() (so "0.0.0.0-255.255.255.255" reads "0.0.0.0/0"),
// sorted by family and address, then unparsable entries verbatim.
func exCanonRanges(in []string) string {
	var rs []AddrRange
	var bad []string
	for _, s := range in {
		if r, err := ParseExchangeIPRange(s); err == nil {
			rs = append(rs, r)
		} else {
			bad = append(bad, strings.TrimSpace(s))
		}
	}
	exSortRanges(rs)
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, r := range rs {
		if s := r.String(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(bad)
	out = append(out, bad...)
	return exJoinOr(out, ", ", "(none)")
}

func exSortRanges(rs []AddrRange) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.From.Is4() != b.From.Is4() {
			return a.From.Is4()
		}
		if a.From != b.From {
			return a.From.Less(b.From)
		}
		return a.To.Less(b.To)
	})
}

func exCanonSet(in []string, empty string) string {
	out := append([]string(nil), in...)
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i]) < strings.ToLower(out[j]) })
	return exJoinOr(out, ", ", empty)
}

// exCanonACEs writes the grantees of ACEs set on the object itself
// (explicit ones and those Exchange derives from PermissionGroups);
// exCanonInherited those inherited from a parent. Plans change only the
// former, so ACEs inherited from above cannot make a read-back differ.
func exCanonACEs(aces []ExchangeACE) string { return exCanonACEsOf(aces, false) }

func exCanonInherited(aces []ExchangeACE) string { return exCanonACEsOf(aces, true) }

func exCanonACEsOf(aces []ExchangeACE, inherited bool) string {
	out := make([]string, 0, len(aces))
	for _, a := range aces {
		if a.Inherited == inherited {
			out = append(out, a.String())
		}
	}
	sort.Strings(out)
	return exJoinOr(out, "; ", "(none)")
}

func exJoinOr(items []string, sep, empty string) string {
	if len(items) == 0 {
		return empty
	}
	return strings.Join(items, sep)
}

// connectorRows are the Setting rows of one connector; Plan's Change.New
// values are computed with the same function so read-back compares like
// with like.
func connectorRows(roleAware bool, c ExchangeConnector) []Setting {
	o := connectorObject(c.Identity)
	rows := []Setting{{o, SetEnabled, exBool(c.Enabled)}}
	if roleAware {
		rows = append(rows, Setting{o, SetTransportRole, c.TransportRole})
	}
	return append(rows,
		Setting{o, SetBindings, exCanonSet(c.Bindings, "(none)")},
		Setting{o, SetRemoteIPRanges, exCanonRanges(c.RemoteIPRanges)},
		Setting{o, SetAuthMechanism, exCanonSet(c.AuthMechanism, "None")},
		Setting{o, SetPermissionGroups, exCanonSet(c.PermissionGroups, "None")},
		Setting{o, SetAnyRecipient, exCanonACEs(c.AnyRecipient)},
		Setting{o, SetAnyRecipientInherited, exCanonInherited(c.AnyRecipient)},
	)
}

func domainRows(d ExchangeAcceptedDomain) []Setting {
	o := domainObject(d.Name)
	return []Setting{{o, SetDomainName, d.DomainName}, {o, SetDomainType, d.DomainType}, {o, SetDomainDefault, exBool(d.Default)}}
}

// ExchangeSettings returns the Setting rows of a state, deterministic.
func ExchangeSettings(s *ExchangeState) []Setting {
	var rows []Setting
	for _, c := range s.Connectors {
		rows = append(rows, connectorRows(s.RoleAware, c)...)
	}
	for _, d := range s.Domains {
		rows = append(rows, domainRows(d)...)
	}
	return rows
}

// ---- findings -------------------------------------------------------------

// Finding IDs of the Exchange platform.
const (
	FindExchAnonRelay       = "EXCH-ANON-RELAY"             // ANONYMOUS LOGON has Accept-Any-Recipient
	FindExchExternalAuth    = "EXCH-EXTERNAL-AUTHORITATIVE" // ExternalAuthoritative on a reachable connector
	FindExchRelayRightOther = "EXCH-RELAY-RIGHT-OTHER"      // Accept-Any-Recipient for an unusual principal
	FindExchWildcardDomain  = "EXCH-ACCEPTED-DOMAIN-WILDCARD"
	FindExchRelayDomain     = "EXCH-ACCEPTED-DOMAIN-RELAY"
	FindExchAnonInternal    = "EXCH-ANON-NON-INTERNET" // STIG: AnonymousUsers on a non-Internet connector
	FindExchProberConnector = "EXCH-PROBER-CONNECTOR"  // which connector answers the prober (info)
	FindExchLoader          = "EXCH-SHELL-LOADER"      // cmdlets loaded in an unsupported way (info)
)

// exRangeHasPublic reports whether r holds any Internet address: true when
// r is not inside a private, loopback or link-local block.
func exRangeHasPublic(r AddrRange) bool {
	for _, p := range exInternalPrefixes {
		if p.Addr().Is4() == r.From.Is4() && p.Contains(r.From) && p.Contains(r.To) {
			return false
		}
	}
	return true
}

var exInternalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("::1/128"),
}

// exposure grades who can reach a connector: exposureWide when a
// RemoteIPRanges entry holding Internet addresses is wider than a /24
// (IPv4) or /48 (IPv6) or does not parse, exposureHosts when only
// narrower Internet ranges (named partner hosts) are listed,
// exposureInternal when every range is private, loopback or link-local.
type exposure int

const (
	exposureInternal exposure = iota
	exposureHosts
	exposureWide
)

func connectorExposure(c ExchangeConnector) exposure {
	rs, bad := c.Ranges()
	if len(bad) > 0 {
		return exposureWide
	}
	e := exposureInternal
	for _, r := range rs {
		if !exRangeHasPublic(r) {
			continue
		}
		limit := 24
		if r.From.Is6() {
			limit = 48
		}
		if r.PrefixLenEquivalent() < limit {
			return exposureWide
		}
		e = exposureHosts
	}
	return e
}

// relaySeverity: high when the prober lands on the connector or the
// Internet at large can; medium for named Internet hosts; low for
// internal-only or disabled connectors.
func relaySeverity(c ExchangeConnector, probers []string) Severity {
	switch {
	case !c.Enabled:
		return SeverityLow
	case len(probers) > 0 || connectorExposure(c) == exposureWide:
		return SeverityHigh
	case connectorExposure(c) == exposureHosts:
		return SeverityMedium
	}
	return SeverityLow
}

func exchangeFindings(s *ExchangeState, prober []netip.Addr) []Finding {
	var fs []Finding
	effective := map[string][]string{} // connector identity -> prober addresses it answers on port 25
	for _, a := range prober {
		if c := s.EffectiveConnector(a, 25); c != nil {
			effective[c.Identity] = append(effective[c.Identity], a.String())
		}
	}
	for _, c := range s.Connectors {
		o := connectorObject(c.Identity)
		probers := effective[c.Identity]
		exp := connectorExposure(c)
		ranges := exCanonRanges(c.RemoteIPRanges)
		for _, a := range c.AnyRecipient {
			if !a.IsAnonymous(s.AnonymousName) {
				continue
			}
			f := Finding{ID: FindExchAnonRelay, Severity: relaySeverity(c, probers), Object: o, Setting: SetAnyRecipient, Value: a.String(),
				Explains: c.Enabled && len(probers) > 0,
				Title:    "Anonymous senders may relay through receive connector " + c.Name,
				Detail: fmt.Sprintf("%s (ANONYMOUS LOGON, %s) holds %s on %s, which accepts connections from %s on %s%s. "+
					"Any client whose address matches these ranges most specifically can send mail to any domain.",
					a.User, AnonymousLogonSID, RightAcceptAnyRecipient, c.Identity, ranges,
					exCanonSet(c.Bindings, "(no bindings)"), enabledNote(c)),
				Remediation: "Remove-ADPermission the anonymous " + RightAcceptAnyRecipient + " right from this connector and put the clients that must relay on a dedicated connector whose RemoteIPRanges list only them (Microsoft Learn, \"Allow anonymous relay on Exchange servers\").",
			}
			if len(probers) > 0 {
				f.Detail += " It is the connector that answers the prober (" + strings.Join(probers, ", ") + ") on port 25."
			}
			if exp != exposureWide && len(probers) == 0 {
				f.Detail += " Its ranges name specific hosts or internal networks only: this is Microsoft's anonymous-relay recipe; check that every listed host should relay."
			}
			if a.Inherited {
				f.Detail += " The permission is inherited from a parent object (the server or its protocol container): remove it there."
			}
			fs = append(fs, f)
		}
		if c.HasAuth("ExternalAuthoritative") {
			fs = append(fs, Finding{ID: FindExchExternalAuth, Severity: relaySeverity(c, probers), Object: o, Setting: SetAuthMechanism,
				Value: exCanonSet(c.AuthMechanism, "None"), Explains: c.Enabled && len(probers) > 0,
				Title: "Receive connector " + c.Name + " treats its clients as externally secured Exchange servers",
				Detail: fmt.Sprintf("AuthMechanism ExternalAuthoritative makes every client matching %s on %s a trusted "+
					"Exchange server (MS Exchange\\Externally Secured Servers): it may relay to any domain and bypasses "+
					"anti-spam checks.%s", ranges, exCanonSet(c.Bindings, "(no bindings)"), enabledNote(c)),
				Remediation: "Remove ExternalAuthoritative from the connector's AuthMechanism, or narrow its RemoteIPRanges to the servers it is meant for.",
			})
		}
		for _, a := range c.AnyRecipient {
			if a.IsAnonymous(s.AnonymousName) || a.SID == AuthenticatedUsersSID || expectedExchangePrincipal(a.User) {
				continue
			}
			fs = append(fs, Finding{ID: FindExchRelayRightOther, Severity: SeverityMedium, Object: o, Setting: SetAnyRecipient,
				Value: a.String(), Explains: false,
				Title:       "Receive connector " + c.Name + " lets " + a.User + " relay",
				Detail:      a.String() + " holds " + RightAcceptAnyRecipient + " on " + c.Identity + ". Check that every member of this principal should be able to send to any domain.",
				Remediation: "Remove-ADPermission the right from this principal unless it is required.",
			})
		}
		if c.HasGroup("AnonymousUsers") && exp == exposureInternal && !c.HasAnonymousRelay(s.AnonymousName, false) {
			fs = append(fs, Finding{ID: FindExchAnonInternal, Severity: SeverityLow, Object: o, Setting: SetPermissionGroups,
				Value: exCanonSet(c.PermissionGroups, "None"),
				Title: "Internal receive connector " + c.Name + " accepts anonymous connections",
				Detail: "PermissionGroups include AnonymousUsers on a connector that only serves internal addresses (" + ranges +
					"); DISA's Exchange STIG (e.g. SV-221245) requires internal connectors not to allow anonymous connections. This is not relay by itself.",
				Remediation: "Remove AnonymousUsers from PermissionGroups unless anonymous internal senders are required.",
			})
		}
	}
	for _, d := range s.Domains {
		o := domainObject(d.Name)
		relayType := strings.EqualFold(d.DomainType, "InternalRelay") || strings.EqualFold(d.DomainType, "ExternalRelay")
		if exIsBroadDomain(d.DomainName) {
			sev := SeverityMedium
			if relayType {
				sev = SeverityHigh
			}
			fs = append(fs, Finding{ID: FindExchWildcardDomain, Severity: sev, Object: o, Setting: SetDomainName,
				Value: d.DomainName, Explains: relayType && len(prober) > 0,
				Title: "Accepted domain " + d.Name + " covers " + d.DomainName,
				Detail: fmt.Sprintf("The accepted domain %q (%s) matches every recipient domain under %q. %s", d.DomainName, d.DomainType,
					strings.TrimPrefix(d.DomainName, "*."), wildcardNote(relayType)),
				Remediation: "Remove the accepted domain (relaylock does it when the operator asks to fix accepted domains) and list the real domains instead.",
			})
			continue
		}
		if relayType {
			fs = append(fs, Finding{ID: FindExchRelayDomain, Severity: SeverityMedium, Object: o, Setting: SetDomainType,
				Value: d.DomainType,
				Title: "Exchange relays mail for " + d.DomainName + " (" + d.DomainType + ")",
				Detail: "Exchange accepts mail from anyone for recipients in " + d.DomainName + " and forwards it through its send connectors. " +
					"This relays only to this domain (and its subdomains when it starts with *.), not to arbitrary domains; it is expected for shared address spaces and hybrid setups.",
				Remediation: "Keep it if the domain really is shared with another mail system; otherwise set its DomainType to Authoritative (relaylock does it when the operator asks to fix accepted domains).",
			})
		}
	}
	if len(prober) > 0 {
		for _, a := range prober {
			c := s.EffectiveConnector(a, 25)
			f := Finding{ID: FindExchProberConnector, Severity: SeverityInfo, Setting: SetRemoteIPRanges}
			if c == nil {
				f.Title = "No enabled receive connector on port 25 accepts " + a.String()
				f.Detail = "Exchange refuses connections from this address on port 25."
			} else {
				f.Object, f.Value = connectorObject(c.Identity), exCanonRanges(c.RemoteIPRanges)
				f.Title = "Receive connector " + c.Name + " answers " + a.String() + " on port 25"
				f.Detail = "Its RemoteIPRanges match this address most specifically, so its permissions decide whether the prober may relay (" + relayVerdict(s, c) + ")."
			}
			fs = append(fs, f)
		}
	}
	if s.Loader == "snapin" {
		fs = append(fs, Finding{ID: FindExchLoader, Severity: SeverityInfo, Setting: "Loader", Value: s.Loader,
			Title:       "Exchange cmdlets were loaded from the local snap-in",
			Detail:      "Connect-ExchangeServer failed, so the unsupported local snap-in was used (it bypasses RBAC); relaylock reads through it but changes nothing through it unless forced. " + strings.Join(s.Warnings, " "),
			Remediation: "Make the Exchange remote shell work (http://<server>/PowerShell/, the Microsoft.Exchange session configuration), then run relaylock again."})
	}
	return fs
}

func relayVerdict(s *ExchangeState, c *ExchangeConnector) string {
	switch {
	case c.HasAnonymousRelay(s.AnonymousName, false):
		return "it grants anonymous relay"
	case c.HasAuth("ExternalAuthoritative"):
		return "it is ExternalAuthoritative: relay allowed"
	default:
		return "it does not grant anonymous relay"
	}
}

func enabledNote(c ExchangeConnector) string {
	if c.Enabled {
		return ""
	}
	return " The connector is disabled, so this has no effect until it is enabled."
}

func wildcardNote(relay bool) string {
	if relay {
		return "As a relay domain it makes Exchange accept and forward mail to any such domain from anyone: an open relay."
	}
	return "As an authoritative domain Exchange accepts such mail for local delivery and bounces it (backscatter), but does not relay it."
}

// exIsBroadDomain flags "*" and wildcards one label below a public suffix
// level ("*.com", "*.co.uk"-style: at most two labels after "*.").
func exIsBroadDomain(d string) bool {
	d = strings.TrimSpace(strings.ToLower(d))
	if d == "*" {
		return true
	}
	if !strings.HasPrefix(d, "*.") {
		return false
	}
	labels := strings.Split(strings.TrimPrefix(d, "*."), ".")
	return len(labels) == 1 || (len(labels) == 2 && len(labels[0]) <= 3)
}

// expectedExchangePrincipal names the principals Exchange's own permission
// groups grant Accept-Any-Recipient to [S33].
func expectedExchangePrincipal(user string) bool {
	u := strings.ToLower(user)
	for _, s := range []string{`\exchange servers`, `\externally secured servers`, `\hub transport servers`,
		`\edge transport servers`, `\legacy exchange servers`} {
		if strings.HasSuffix(u, s) {
			return true
		}
	}
	return false
}

// ---- driver ---------------------------------------------------------------

type exchangeDriver struct{}

func (exchangeDriver) Platform() Platform { return PlatformExchange }

func runExchange(ctx context.Context, r Runner, script string, params map[string]string) (*ScriptRun, error) {
	run, err := r.Run(ctx, script, params)
	if err != nil {
		return run, err
	}
	if run.Output == nil {
		return run, fmt.Errorf("%s: no result frame", script)
	}
	if run.Output.ExitCode != 0 || len(run.Errors) > 0 {
		msg := strings.Join(run.Errors, "; ")
		if msg == "" {
			msg = "exit code " + strconv.Itoa(run.Output.ExitCode)
		}
		return run, fmt.Errorf("%s on the host: %s", script, msg)
	}
	return run, nil
}

func (exchangeDriver) Inspect(ctx context.Context, r Runner, host string, info HostInfo, prober []netip.Addr) (*Inspection, error) {
	run, err := runExchange(ctx, r, ExchangeReadScript, exParams(ctx))
	insp := &Inspection{Host: host, Time: time.Now().UTC(), Platform: PlatformExchange, HostInfo: info}
	for _, a := range prober {
		insp.Prober = append(insp.Prober, a.String())
	}
	if run != nil {
		insp.Runs = append(insp.Runs, *run)
	}
	if err != nil {
		return insp, fmt.Errorf("inspect exchange: %w", err)
	}
	st, err := decodeExchangeRead(run.Output)
	if err != nil {
		return insp, fmt.Errorf("inspect exchange: %w", err)
	}
	insp.Settings = ExchangeSettings(st)
	insp.Findings = exchangeFindings(st, prober)
	if insp.State, err = json.Marshal(st); err != nil {
		return insp, fmt.Errorf("inspect exchange: %w", err)
	}
	return insp, nil
}

// exchangeDesired is Plan.Desired: the operations and, for each, the
// indexes of the Plan.Changes it makes.
type exchangeDesired struct {
	Ops       []ExchangeOp `json:"ops"`
	OpChanges [][]int      `json:"op_changes"`
	// AllowSnapin lets exchange-write run through the bare snap-in on
	// 2010+ (Request.Force), and the rollback of such a change too.
	AllowSnapin bool `json:"allow_snapin,omitempty"`
	// DomainController is the DC the plan was read from.
	DomainController string `json:"domain_controller,omitempty"`
}

type exchangePlanner struct {
	plan    *Plan
	desired exchangeDesired
}

func (p *exchangePlanner) add(op ExchangeOp, changes ...Change) {
	var idx []int
	for _, c := range changes {
		idx = append(idx, len(p.plan.Changes))
		p.plan.Changes = append(p.plan.Changes, c)
	}
	p.desired.Ops = append(p.desired.Ops, op)
	p.desired.OpChanges = append(p.desired.OpChanges, idx)
}

func (p *exchangePlanner) note(format string, args ...any) {
	p.plan.Notes = append(p.plan.Notes, fmt.Sprintf(format, args...))
}

func exStateOf(insp *Inspection) (*ExchangeState, error) {
	if insp == nil || len(insp.State) == 0 {
		return nil, errors.New("no exchange state in the inspection")
	}
	var s ExchangeState
	if err := json.Unmarshal(insp.State, &s); err != nil {
		return nil, fmt.Errorf("exchange state: %w", err)
	}
	s.Normalize()
	return &s, nil
}

// ErrConnectorName reports a dedicated connector name Exchange would refuse.
var ErrConnectorName = errors.New("invalid receive connector name")

// CheckConnectorName refuses names Exchange cannot store: empty, longer
// than 64 characters (New-ReceiveConnector -Name: "The maximum length is
// 64 characters"), control characters, or the identity separator "\"
// (SERVER\Name). It needs no host: callers run it before connecting.
func CheckConnectorName(n string) error {
	if strings.TrimSpace(n) == "" || n != strings.TrimSpace(n) {
		return fmt.Errorf("%w: %q: empty or with leading/trailing spaces", ErrConnectorName, n)
	}
	if len([]rune(n)) > 64 {
		return fmt.Errorf("%w: %q: longer than 64 characters", ErrConnectorName, n)
	}
	for _, r := range n {
		if unicode.IsControl(r) || r == '\\' {
			return fmt.Errorf("%w: %q: contains a control character or a backslash", ErrConnectorName, n)
		}
	}
	return nil
}

// exCoveredBy reports whether every address of r lies in the union of allow.
func exCoveredBy(r AddrRange, allow []AddrRange) bool {
	var same []AddrRange
	for _, a := range allow {
		if a.From.Is4() == r.From.Is4() {
			same = append(same, a)
		}
	}
	exSortRanges(same)
	cur := r.From
	for _, a := range same {
		if cur.Less(a.From) {
			return false // sorted by From: no later range covers cur
		}
		if !a.To.Less(cur) {
			if !a.To.Less(r.To) {
				return true
			}
			cur = a.To.Next()
		}
	}
	return false
}

// exReachableBeyond reports whether a connector accepts addresses outside
// the allow list (unparsable ranges count as outside).
func exReachableBeyond(c ExchangeConnector, allow []AddrRange) bool {
	rs, bad := c.Ranges()
	if len(bad) > 0 || len(rs) == 0 {
		return len(bad) > 0
	}
	for _, r := range rs {
		if !exCoveredBy(r, allow) {
			return true
		}
	}
	return false
}

func (exchangeDriver) Plan(insp *Inspection, req Request) (*Plan, error) {
	s, err := exStateOf(insp)
	if err != nil {
		return nil, fmt.Errorf("plan exchange: %w", err)
	}
	name := req.ConnectorName
	if name == "" {
		name = DefaultRelayConnectorName
	}
	if err := CheckConnectorName(name); err != nil {
		return nil, fmt.Errorf("plan exchange: %w", err)
	}
	if s.Loader == "snapin" && !req.Force {
		return nil, fmt.Errorf("plan exchange: %w", ErrUnsupportedShell)
	}
	p := &exchangePlanner{plan: &Plan{Host: insp.Host, Platform: PlatformExchange}}
	p.desired.AllowSnapin = s.Loader == "snapin"
	p.desired.DomainController = s.DomainController
	relayID := s.Server + `\` + name
	dedicated := s.Connector(relayID)
	allow := append([]AddrRange(nil), req.Allow...)
	exSortRanges(allow)

	// 1. The dedicated relay connector first, so allowed clients never lose relay.
	if len(allow) > 0 {
		if err := planDedicated(p, s, dedicated, relayID, name, allow); err != nil {
			return nil, fmt.Errorf("plan exchange: %w", err)
		}
	} else {
		p.note("The allow list is empty: no connector will let anonymous clients relay; only authenticated clients can.")
	}

	// 2. Close anonymous relay and ExternalAuthoritative on connectors reachable beyond the allow list.
	for _, c := range s.Connectors {
		if strings.EqualFold(c.Identity, relayID) {
			continue
		}
		if !exReachableBeyond(c, allow) {
			if c.HasAnonymousRelay(s.AnonymousName, false) || c.HasAuth("ExternalAuthoritative") {
				p.note("%s relays for %s only, all inside the allow list: left unchanged.", c.Identity, exCanonRanges(c.RemoteIPRanges))
			}
			continue
		}
		var keep []ExchangeACE
		var removed []ExchangeACE
		for _, a := range c.AnyRecipient {
			switch {
			case a.IsAnonymous(s.AnonymousName) && a.Inherited:
				p.note("%s inherits %s for %s from a parent object: relaylock does not change inherited permissions; remove it on the parent (the server object or its Protocols container) with Remove-ADPermission.",
					c.Identity, RightAcceptAnyRecipient, a.User)
				keep = append(keep, a)
			case a.IsAnonymous(s.AnonymousName):
				removed = append(removed, a)
			default:
				keep = append(keep, a)
			}
		}
		if len(removed) > 0 {
			// One Remove-ADPermission -User removes the right for the
			// principal, however many ACEs carry it.
			a := removed[0]
			why := "ANONYMOUS LOGON may relay through this connector, which accepts " + exCanonRanges(c.RemoteIPRanges) + ", beyond the allowed clients."
			if isDefaultFrontend(c) {
				why += " This connector receives the Internet's mail: its RemoteIPRanges stay as they are, only the relay right goes."
			}
			p.add(ExchangeOp{Kind: OpRemoveACE, Identity: c.Identity, User: a.User, SID: a.SID},
				Change{Object: connectorObject(c.Identity), Setting: SetAnyRecipient, Current: exCanonACEs(c.AnyRecipient),
					New: exCanonACEs(keep), Why: why})
			c.AnyRecipient = keep
		}
		if c.HasAuth("ExternalAuthoritative") {
			var auth []string
			for _, m := range c.AuthMechanism {
				if !strings.EqualFold(m, "ExternalAuthoritative") {
					auth = append(auth, m)
				}
			}
			p.add(ExchangeOp{Kind: OpSetConnector, Identity: c.Identity, Set: []string{FieldAuth}, Auth: auth},
				Change{Object: connectorObject(c.Identity), Setting: SetAuthMechanism, Current: exCanonSet(c.AuthMechanism, "None"),
					New: exCanonSet(auth, "None"),
					Why: "ExternalAuthoritative makes every client in " + exCanonRanges(c.RemoteIPRanges) + " a trusted server that may relay; the allowed clients relay through the dedicated connector instead."})
			if !c.HasGroup("AnonymousUsers") && exContainsInt(c.Ports(), 25) {
				p.note("%s will no longer treat its clients as Exchange servers, and its PermissionGroups (%s) do not include AnonymousUsers: Internet servers that land on it (%s) can no longer deliver anonymously. Narrow its RemoteIPRanges to the partner servers it is meant for, or disable it if Default Frontend should take that mail.",
					c.Identity, exCanonSet(c.PermissionGroups, "None"), exCanonRanges(c.RemoteIPRanges))
			}
		}
	}

	// 3. Relay and wildcard accepted domains: only with FixDomains.
	for _, d := range s.Domains {
		relayType := strings.EqualFold(d.DomainType, "InternalRelay") || strings.EqualFold(d.DomainType, "ExternalRelay")
		broad := exIsBroadDomain(d.DomainName)
		if !relayType && !broad {
			continue
		}
		if !req.FixDomains {
			if broad {
				p.note("Accepted domain %s (%s, %s) covers every recipient domain under it: remove it (relaylock does when asked to fix accepted domains).", d.Name, d.DomainName, d.DomainType)
			} else {
				p.note("Accepted domain %s (%s) is %s: Exchange relays to it from anyone, for that domain only; left unchanged (asked to fix accepted domains, relaylock makes it Authoritative).", d.Name, d.DomainName, d.DomainType)
			}
			continue
		}
		o := domainObject(d.Name)
		if broad {
			if d.Default {
				p.note("Accepted domain %s is the default domain: relaylock does not remove it; fix it by hand.", d.Name)
				continue
			}
			var chs []Change
			for _, row := range domainRows(d) {
				chs = append(chs, Change{Object: o, Setting: row.Name, Current: row.Value, New: ValueAbsent,
					Why: "Accepted domain " + d.DomainName + " matches almost every recipient domain (the operator asked to fix accepted domains)."})
			}
			p.add(ExchangeOp{Kind: OpRemoveDomain, Identity: d.Name}, chs...)
			continue
		}
		p.add(ExchangeOp{Kind: OpSetDomain, Identity: d.Name, DomainType: "Authoritative"},
			Change{Object: o, Setting: SetDomainType, Current: d.DomainType, New: "Authoritative",
				Why: "Relay domain: Exchange accepts mail for " + d.DomainName + " from anyone and forwards it (the operator asked to fix accepted domains; recipients that do not exist in Exchange will now be rejected)."})
	}

	// 4. Authenticated relay.
	if req.AllowAuthenticated {
		p.note("Authenticated clients keep relaying through the ExchangeUsers permission group (Authenticated Users holds %s on the client connectors, e.g. Client Frontend on port 587); relaylock does not change it.", RightAcceptAnyRecipient)
	} else {
		p.note("Authenticated relay was not requested, but relaylock leaves the ExchangeUsers permission group (Authenticated Users, %s) in place: removing it would stop Outlook, phones and devices from submitting mail to outside recipients. Restrict who can authenticate (accounts, Client Frontend RemoteIPRanges) instead.", RightAcceptAnyRecipient)
	}
	p.note("Exchange applies receive connector changes after Active Directory replication (no restart in Microsoft's procedure); re-probe with back-off for a few minutes before restarting MSExchangeFrontEndTransport (2013+) or MSExchangeTransport.")

	if p.plan.Desired, err = json.Marshal(p.desired); err != nil {
		return nil, fmt.Errorf("plan exchange: %w", err)
	}
	return p.plan, nil
}

// ErrForeignConnector reports a --connector-name that names an existing
// receive connector relaylock did not create: reconfiguring it as the
// dedicated relay connector would narrow its RemoteIPRanges, rebind it,
// replace its AuthMechanism and PermissionGroups and grant anonymous
// relay on it (for Default Frontend: an outage for inbound Internet mail
// and an anonymous relay right on the Internet-facing connector).
var ErrForeignConnector = errors.New("refusing to reconfigure a receive connector relaylock did not create")

// IsRelaylockConnector reports whether relaylock created c: its Comment
// carries RelayConnectorMarker, or (connectors made before the marker)
// it has the default dedicated name and is none of Exchange's defaults.
func IsRelaylockConnector(c ExchangeConnector) bool {
	if exchangeDefaultConnector(c.Name, c.serverName()) != "" {
		return false
	}
	return strings.HasPrefix(strings.TrimSpace(c.Comment), RelayConnectorMarker) ||
		strings.EqualFold(c.Name, DefaultRelayConnectorName)
}

// exchangeDefaultConnector says which of the receive connectors Exchange
// setup creates on server the name is ("" for none): Default, Client
// (2007/2010); Default, Client Proxy, Default Frontend, Outbound Proxy
// Frontend, Client Frontend (2013+); Default internal receive connector
// (Edge), each followed by the server name.
func exchangeDefaultConnector(name, server string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	server = strings.ToLower(strings.TrimSpace(server))
	for _, d := range []struct{ prefix, what string }{
		{"default frontend ", "Exchange's default Internet-facing connector, which receives the Internet's mail on port 25"},
		{"outbound proxy frontend ", "Exchange's default connector for mail the Mailbox server sends out through the Front End, on port 717"},
		{"client frontend ", "Exchange's default client submission connector, on port 587"},
		{"client proxy ", "Exchange's default connector for client mail the Front End proxies, on port 465"},
		{"default internal receive connector ", "the Edge Transport server's default connector, which receives the Internet's mail"},
		{"default ", "Exchange's default receive connector, on port 25 before Exchange 2013 and port 2525 of the Mailbox server since"},
		{"client ", "Exchange's default client submission connector, on port 587"},
	} {
		if server != "" && n == d.prefix+server {
			return d.what
		}
	}
	return ""
}

// serverName is the connector's server, from its identity when Server is
// empty.
func (c ExchangeConnector) serverName() string {
	if c.Server != "" {
		return c.Server
	}
	srv, _, _ := strings.Cut(c.Identity, `\`)
	return srv
}

// checkOwnConnector refuses to reconfigure an existing connector that
// relaylock did not create (ErrForeignConnector), naming it and why.
func checkOwnConnector(c ExchangeConnector) error {
	if IsRelaylockConnector(c) {
		return nil
	}
	why := "its Comment does not start with " + RelayConnectorMarker + ", the mark relaylock gives the connector it creates"
	if d := exchangeDefaultConnector(c.Name, c.serverName()); d != "" {
		why = "it is " + d
	}
	return fmt.Errorf("%w: the relay connector name given names %s, and %s. As the dedicated relay connector it would get the allowed clients as its only RemoteIPRanges, new bindings, AuthMechanism and PermissionGroups, and ANONYMOUS LOGON relay. Choose a name no connector has yet (the default is %q); nothing was changed",
		ErrForeignConnector, c.Identity, why, DefaultRelayConnectorName)
}

func isDefaultFrontend(c ExchangeConnector) bool {
	return strings.HasPrefix(strings.ToLower(c.Name), "default frontend") ||
		(exContainsInt(c.Ports(), 25) && strings.HasPrefix(strings.ToLower(c.Name), "default ") && !strings.EqualFold(c.TransportRole, "FrontendTransport"))
}

// dedicatedRole is the TransportRole of the dedicated connector:
// FrontendTransport where it exists [S32], HubTransport on a 2013+ server
// without it (Edge), none before 2013.
func dedicatedRole(s *ExchangeState) string {
	if !s.RoleAware {
		return ""
	}
	for _, c := range s.Connectors {
		if strings.EqualFold(c.TransportRole, "FrontendTransport") {
			return "FrontendTransport"
		}
	}
	return "HubTransport"
}

func planDedicated(p *exchangePlanner, s *ExchangeState, cur *ExchangeConnector, identity, name string, allow []AddrRange) error {
	ranges := make([]string, 0, len(allow))
	v6 := false
	for _, r := range allow {
		ranges = append(ranges, r.String())
		v6 = v6 || r.From.Is6()
	}
	// Listen where every other port-25 connector of the role listens, so the
	// dedicated connector's narrow ranges win whichever of local binding or
	// remote range Exchange weighs first.
	bindings := []string{"0.0.0.0:25"}
	if v6 {
		bindings = append(bindings, "[::]:25")
	}
	role := dedicatedRole(s)
	for _, c := range s.Connectors {
		if !strings.EqualFold(c.TransportRole, role) || strings.EqualFold(c.Identity, identity) {
			continue
		}
		for _, b := range c.Bindings {
			ip, port, ok := exSplitBinding(b)
			if !ok || port != 25 || ip == "0.0.0.0" || ip == "::" || exContainsFold(bindings, b) {
				continue
			}
			if a, err := netip.ParseAddr(ip); err == nil && (a.Is4() || v6) {
				bindings = append(bindings, strings.TrimSpace(b))
			}
		}
	}
	sort.Strings(bindings[1:])
	// Method A of [S32]: AnonymousUsers plus the anonymous Accept-Any-Recipient
	// ACE (minimum rights; not ExternalAuthoritative). AuthMechanism is set
	// explicitly to Tls so the result does not depend on version defaults.
	want := ExchangeConnector{Identity: identity, Name: name, Server: s.Server, TransportRole: role, Enabled: true,
		Bindings: bindings, RemoteIPRanges: ranges, AuthMechanism: []string{"Tls"}, PermissionGroups: []string{"AnonymousUsers"},
		AnyRecipient: []ExchangeACE{{User: s.AnonymousName, SID: AnonymousLogonSID}}}
	// Exchange refuses two connectors of a role with the same binding and
	// the same remote range [S33]: say so before touching the host.
	for _, c := range s.Connectors {
		if strings.EqualFold(c.Identity, identity) || !strings.EqualFold(c.TransportRole, role) {
			continue
		}
		theirs, _ := c.Ranges()
		for _, b := range bindings {
			if !exContainsFold(c.Bindings, b) {
				continue
			}
			for _, r := range allow {
				for _, x := range theirs {
					if x == r {
						return fmt.Errorf("allow entry %s on %s is already the RemoteIPRanges entry of receive connector %s: Exchange refuses a second connector with the same binding and range; remove the entry from the allow list or from %s", r, b, c.Identity, c.Identity)
					}
				}
			}
		}
	}
	o := connectorObject(identity)
	why := "Dedicated relay connector for the allowed clients (" + exCanonRanges(ranges) + "): anonymous senders from these addresses may relay, nobody else (Microsoft's anonymous relay recipe)."
	if cur == nil {
		// New-ReceiveConnector sets everything but the ACE; add-ace makes
		// the Accept-Any-Recipient row. What the new connector inherits
		// from its parent is not planned (not relaylock's to predict).
		var chs []Change
		var ace Change
		for _, row := range connectorRows(s.RoleAware, want) {
			c := Change{Object: o, Setting: row.Name, Current: ValueAbsent, New: row.Value, Why: why}
			switch row.Name {
			case SetAnyRecipientInherited:
			case SetAnyRecipient:
				ace = c
			default:
				chs = append(chs, c)
			}
		}
		p.add(ExchangeOp{Kind: OpNewConnector, Name: name, Server: s.Server, Role: want.TransportRole,
			Bindings: want.Bindings, Ranges: want.RemoteIPRanges, Auth: want.AuthMechanism, Groups: want.PermissionGroups,
			Comment: RelayConnectorComment}, chs...)
		p.add(ExchangeOp{Kind: OpAddACE, Identity: identity, User: s.AnonymousName, SID: AnonymousLogonSID}, ace)
		p.plan.Created = append(p.plan.Created, o)
		return nil
	}
	if err := checkOwnConnector(*cur); err != nil {
		return err
	}
	if s.RoleAware && !strings.EqualFold(cur.TransportRole, want.TransportRole) {
		return fmt.Errorf("receive connector %s exists in the %s role, not %s: choose another connector name", identity, cur.TransportRole, want.TransportRole)
	}
	curRows := connectorRows(s.RoleAware, *cur)
	wantRows := connectorRows(s.RoleAware, want)
	op := ExchangeOp{Kind: OpSetConnector, Identity: identity}
	var chs []Change
	for i, row := range wantRows {
		if row.Name == SetAnyRecipient || row.Name == SetAnyRecipientInherited || row.Name == SetTransportRole || row.Value == curRows[i].Value {
			continue
		}
		chs = append(chs, Change{Object: o, Setting: row.Name, Current: curRows[i].Value, New: row.Value, Why: why})
		switch row.Name {
		case SetEnabled:
			op.Set, op.Enabled = append(op.Set, FieldEnabled), true
		case SetBindings:
			op.Set, op.Bindings = append(op.Set, FieldBindings), want.Bindings
		case SetRemoteIPRanges:
			op.Set, op.Ranges = append(op.Set, FieldRanges), want.RemoteIPRanges
		case SetAuthMechanism:
			op.Set, op.Auth = append(op.Set, FieldAuth), want.AuthMechanism
		case SetPermissionGroups:
			op.Set, op.Groups = append(op.Set, FieldGroups), want.PermissionGroups
		}
	}
	if len(op.Set) > 0 {
		p.add(op, chs...)
	}
	if !cur.HasAnonymousRelay(s.AnonymousName, false) {
		after := append(append([]ExchangeACE(nil), cur.AnyRecipient...), want.AnyRecipient[0])
		p.add(ExchangeOp{Kind: OpAddACE, Identity: identity, User: s.AnonymousName, SID: AnonymousLogonSID},
			Change{Object: o, Setting: SetAnyRecipient, Current: exCanonACEs(cur.AnyRecipient), New: exCanonACEs(after), Why: why})
	}
	return nil
}

// ErrExchangeWrite wraps a failed exchange-write run.
var ErrExchangeWrite = errors.New("exchange-write failed")

// ErrUnsupportedShell: the Exchange cmdlets came from the bare snap-in on
// Exchange 2010 or later (Connect-ExchangeServer failed), which Microsoft
// supports for *-TransportAgent cmdlets only; relaylock writes through it
// only when forced (Request.Force). cmd/ names the flag.
var ErrUnsupportedShell = errors.New("refusing to change Exchange through the bare snap-in: Microsoft supports the local Exchange snap-in on 2010 and later for *-TransportAgent cmdlets only (\"may result in irreparable damage\"); " +
	"fix the Exchange remote shell (http://<server>/PowerShell/) so that Connect-ExchangeServer works, or force the write through the snap-in")

// exParams are the parameters every Exchange script of a run gets: the
// pinned domain controller (WithDomainController), if any.
func exParams(ctx context.Context) map[string]string {
	if dc := DomainControllerFrom(ctx); dc != "" {
		return map[string]string{DomainControllerParam: dc}
	}
	return nil
}

// exRunOps runs ops and returns how many completed ('done' records).
func exRunOps(ctx context.Context, r Runner, ops []ExchangeOp, allowSnapin bool) (int, *ScriptRun, error) {
	if len(ops) == 0 {
		return 0, nil, nil
	}
	params := EncodeExchangeOps(ops)
	for k, v := range exParams(ctx) {
		params[k] = v
	}
	if allowSnapin {
		params["allow_snapin"] = "yes"
	}
	run, err := r.Run(ctx, ExchangeWriteScript, params)
	done := 0
	if run != nil && run.Output != nil {
		for _, rec := range run.Output.Of("done") {
			if n, e := rec.Int("op"); e == nil && int(n) == done+1 {
				done++
			}
		}
	}
	if err != nil {
		return done, run, fmt.Errorf("%w: %w", ErrExchangeWrite, err)
	}
	if run.Output == nil || run.Output.ExitCode != 0 || len(run.Errors) > 0 || done != len(ops) {
		msg := "incomplete"
		if run.Output != nil && len(run.Errors) > 0 {
			msg = strings.Join(run.Errors, "; ")
		}
		return done, run, fmt.Errorf("%w after %d of %d operations: %s", ErrExchangeWrite, done, len(ops), msg)
	}
	return done, run, nil
}

func (exchangeDriver) Apply(ctx context.Context, r Runner, plan *Plan) ([]Change, error) {
	var d exchangeDesired
	if err := json.Unmarshal(plan.Desired, &d); err != nil {
		return nil, fmt.Errorf("apply exchange: desired: %w", err)
	}
	if len(d.OpChanges) != len(d.Ops) {
		return nil, errors.New("apply exchange: desired: operations and changes do not match")
	}
	if DomainControllerFrom(ctx) == "" {
		ctx = WithDomainController(ctx, d.DomainController)
	}
	done, _, err := exRunOps(ctx, r, d.Ops, d.AllowSnapin)
	var applied []Change
	for i := 0; i < done; i++ {
		for _, ci := range d.OpChanges[i] {
			if ci >= 0 && ci < len(plan.Changes) {
				applied = append(applied, plan.Changes[ci])
			}
		}
	}
	if err != nil {
		return applied, fmt.Errorf("apply exchange: %w", err)
	}
	return applied, nil
}

// Restore reads the host again and puts back, for every object the plan
// touched, the state saved in the backup's inspection: connectors'
// Enabled, Bindings, RemoteIPRanges, AuthMechanism, PermissionGroups and
// explicit ANONYMOUS LOGON Accept-Any-Recipient ACEs, accepted domains'
// types (removed ones are created again); connectors the plan created
// are deleted. It
// works after a partial Apply, and running it twice changes nothing.
func (exchangeDriver) Restore(ctx context.Context, r Runner, b *Backup) error {
	if b == nil || b.Inspection == nil || b.Plan == nil {
		return errors.New("restore exchange: backup has no inspection or plan")
	}
	old, err := exStateOf(b.Inspection)
	if err != nil {
		return fmt.Errorf("restore exchange: %w", err)
	}
	var d exchangeDesired
	if len(b.Plan.Desired) > 0 {
		if err := json.Unmarshal(b.Plan.Desired, &d); err != nil {
			return fmt.Errorf("restore exchange: desired: %w", err)
		}
	}
	if DomainControllerFrom(ctx) == "" {
		ctx = WithDomainController(ctx, old.DomainController)
	}
	run, err := runExchange(ctx, r, ExchangeReadScript, exParams(ctx))
	if err != nil {
		return fmt.Errorf("restore exchange: read current state: %w", err)
	}
	cur, err := decodeExchangeRead(run.Output)
	if err != nil {
		return fmt.Errorf("restore exchange: %w", err)
	}
	ops, err := restoreOps(old, cur, b.Plan)
	if err != nil {
		return fmt.Errorf("restore exchange: %w", err)
	}
	if _, _, err := exRunOps(ctx, r, ops, d.AllowSnapin); err != nil {
		return fmt.Errorf("restore exchange: %w", err)
	}
	return nil
}

func restoreOps(old, cur *ExchangeState, plan *Plan) ([]ExchangeOp, error) {
	touched := map[string]bool{}
	for _, c := range plan.Changes {
		touched[c.Object] = true
	}
	created := map[string]bool{}
	for _, o := range plan.Created {
		created[o] = true
	}
	var ops []ExchangeOp
	for _, oc := range cur.Connectors {
		if created[connectorObject(oc.Identity)] && old.Connector(oc.Identity) == nil {
			ops = append(ops, ExchangeOp{Kind: OpRemoveConnector, Identity: oc.Identity})
		}
	}
	for _, oc := range old.Connectors {
		if !touched[connectorObject(oc.Identity)] {
			continue
		}
		nc := cur.Connector(oc.Identity)
		if nc == nil {
			return nil, fmt.Errorf("receive connector %s no longer exists: recreate it by hand from the backup", oc.Identity)
		}
		set := ExchangeOp{Kind: OpSetConnector, Identity: oc.Identity}
		if oc.Enabled != nc.Enabled {
			set.Set, set.Enabled = append(set.Set, FieldEnabled), oc.Enabled
		}
		if exCanonSet(oc.Bindings, "") != exCanonSet(nc.Bindings, "") {
			set.Set, set.Bindings = append(set.Set, FieldBindings), oc.Bindings
		}
		if exCanonRanges(oc.RemoteIPRanges) != exCanonRanges(nc.RemoteIPRanges) {
			set.Set, set.Ranges = append(set.Set, FieldRanges), oc.RemoteIPRanges
		}
		if exCanonSet(oc.AuthMechanism, "None") != exCanonSet(nc.AuthMechanism, "None") {
			set.Set, set.Auth = append(set.Set, FieldAuth), oc.AuthMechanism
		}
		if exCanonSet(oc.PermissionGroups, "None") != exCanonSet(nc.PermissionGroups, "None") {
			set.Set, set.Groups = append(set.Set, FieldGroups), oc.PermissionGroups
		}
		if len(set.Set) > 0 {
			ops = append(ops, set)
		}
		// Explicit anonymous ACEs (the only ones a plan adds or removes):
		// re-add the saved ones, remove ones the plan added. The other
		// grantees come from PermissionGroups/AuthMechanism, which
		// Exchange derives again from the values restored above.
		for _, a := range oc.AnyRecipient {
			if !a.Inherited && a.IsAnonymous(old.AnonymousName) && !exHasACE(nc.AnyRecipient, a) {
				ops = append(ops, ExchangeOp{Kind: OpAddACE, Identity: oc.Identity, User: a.User, SID: a.SID})
			}
		}
		for _, a := range nc.AnyRecipient {
			if !a.Inherited && a.IsAnonymous(cur.AnonymousName) && !exHasACE(oc.AnyRecipient, a) {
				ops = append(ops, ExchangeOp{Kind: OpRemoveACE, Identity: oc.Identity, User: a.User, SID: a.SID})
			}
		}
	}
	for _, od := range old.Domains {
		if !touched[domainObject(od.Name)] {
			continue
		}
		nd := cur.Domain(od.Name)
		switch {
		case nd == nil:
			ops = append(ops, ExchangeOp{Kind: OpNewDomain, Name: od.Name, DomainName: od.DomainName, DomainType: od.DomainType})
		case !strings.EqualFold(nd.DomainType, od.DomainType):
			ops = append(ops, ExchangeOp{Kind: OpSetDomain, Identity: od.Name, DomainType: od.DomainType})
		}
	}
	return ops, nil
}

func exHasACE(list []ExchangeACE, a ExchangeACE) bool {
	for _, b := range list {
		if b.Inherited {
			continue
		}
		if (a.SID != "" && b.SID == a.SID) || ((a.SID == "" || b.SID == "") && strings.EqualFold(a.User, b.User)) {
			return true
		}
	}
	return false
}

// ---- small helpers ---------------------------------------------------------

func exBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func exContainsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), s) {
			return true
		}
	}
	return false
}

func exContainsInt(list []int, n int) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}
