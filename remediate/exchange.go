package remediate

// Exchange 2007 .. Subscription Edition: receive connectors, their
// ms-Exch-SMTP-Accept-Any-Recipient permissions and accepted domains
// (docs/windows-relay.md section 3). The scripts are templates/powershell/
// exchange-read.ps1 and exchange-write.ps1.
//
// The wire formats (exchange_scripts.go) follow the scripts' headers:
//   - exchange-read prints the records decodeExchangeRead parses;
//   - exchange-write takes the parameters encodeExchangeOps builds.
//
// The lab (internal/lab) has its own code for both, written from the
// scripts, so that a driver bug cannot hide behind the same bug in the lab.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Script names of the Exchange platform.
const (
	ExchangeReadScript  = "exchange-read"
	ExchangeWriteScript = "exchange-write"
)

// Well-known names and SIDs.
const (
	// anonymousLogonSID is NT AUTHORITY\ANONYMOUS LOGON; its name is
	// localized, the SID is not (docs/windows-relay.md 3.2, [S39]).
	anonymousLogonSID = "S-1-5-7"
	// authenticatedUsersSID is NT AUTHORITY\Authenticated Users, granted
	// Accept-Any-Recipient by the ExchangeUsers permission group [S33].
	authenticatedUsersSID = "S-1-5-11"
	// RightAcceptAnyRecipient is the extended right that lets a sender
	// relay through a receive connector [S33].
	RightAcceptAnyRecipient = "ms-Exch-SMTP-Accept-Any-Recipient"
	// defaultRelayConnectorName is the dedicated connector relaylock
	// creates for the allowed clients unless Request.ConnectorName is set.
	defaultRelayConnectorName = "relaylock Relay"
	// relayConnectorComment is the Comment relaylock gives the connector
	// it creates (New-ReceiveConnector -Comment): it is how a later run
	// knows the connector is relaylock's to reconfigure. A connector is
	// relaylock's when its Comment starts with relayConnectorMarker.
	relayConnectorComment = relayConnectorMarker + " dedicated relay connector for the allowed clients; relaylock remediate reconfigures it and relaylock rollback removes it."
	relayConnectorMarker  = "[relaylock]"
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
	// Comment is the connector's administrator note; relayConnectorMarker
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
		return a.SID == anonymousLogonSID
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
		r, err := parseExchangeIPRange(s)
		if err != nil {
			bad = append(bad, s)
			continue
		}
		ok = append(ok, r)
	}
	return ok, bad
}

// parseExchangeIPRange parses a RemoteIPRanges entry in the forms
// Set-ReceiveConnector accepts [S32]: an address, FIRST-LAST, a CIDR
// prefix, and the older address(mask) form, e.g.
// "192.168.1.0(255.255.255.0)" (contiguous IPv4 masks only).
func parseExchangeIPRange(s string) (AddrRange, error) {
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

// ---- Plan.Desired: exchange-write operations --------------------------------

// Operation kinds of exchange-write.
const (
	opNewConnector    = "new-connector"
	opSetConnector    = "set-connector"
	opRemoveConnector = "remove-connector"
	opAddACE          = "add-ace"
	opRemoveACE       = "remove-ace"
	opSetDomain       = "set-domain"
	opNewDomain       = "new-domain"
	opRemoveDomain    = "remove-domain"
)

// Fields set-connector can set (exchangeOp.Set).
const (
	fieldEnabled  = "enabled"
	fieldBindings = "bindings"
	fieldRanges   = "ranges"
	fieldAuth     = "auth"
	fieldGroups   = "groups"
)

// exchangeOp is one exchange-write operation. Every field travels as a
// psframe parameter (data), see encodeExchangeOps.
type exchangeOp struct {
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
	// Comment: new-connector's -Comment (relayConnectorComment).
	Comment string `json:"comment,omitempty"`
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
	Ops       []exchangeOp `json:"ops"`
	OpChanges [][]int      `json:"op_changes"`
	// AllowSnapin lets exchange-write run through the bare snap-in on
	// 2010+ (Request.Force), and the rollback of such a change too.
	AllowSnapin bool `json:"allow_snapin,omitempty"`
	// DomainController is the DC the plan was read from.
	DomainController string `json:"domain_controller,omitempty"`
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
