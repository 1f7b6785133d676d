package lab

// The Exchange 2007+ simulation: one server's receive connectors, their
// ms-Exch-SMTP-Accept-Any-Recipient permissions and the organisation's
// accepted domains (docs/windows-relay.md section 3). It answers relaylock's
// exchange-read and reads exchange-write's parameters with its own code,
// written from the two scripts (exchange_ops.go), not with the driver's
// encoder and decoder: the lab checks the driver's wire formats instead of
// sharing them.
//
// Cmdlet behaviour is simulated strictly: unknown identities, duplicate
// names, invalid IP ranges, bindings or enum values and conflicting
// binding/range pairs are refused with Exchange-style messages (the exact
// wording is UNVERIFIED against a real server), and an operation that
// fails stops the run, the earlier ones staying applied, as in the real
// script.

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// Lab principals. The MS Exchange pseudo-accounts have no Windows SID a
// remote session can translate, so exchange-read reports them with a
// $null SID (the lab models the remote-session case).
const (
	labServer           = "EX1"
	labDC               = "DC1." + LabExchangeDomain
	labAnonEnglish      = `NT AUTHORITY\ANONYMOUS LOGON`
	labAnonGerman       = `NT-AUTORITÄT\ANONYMOUS-ANMELDUNG`
	labAuthUsersEnglish = `NT AUTHORITY\Authenticated Users`
	labAuthUsersGerman  = `NT-AUTORITÄT\Authentifizierte Benutzer`
	labExchangeServers  = `CORP\Exchange Servers`
	labExchServersSID   = "S-1-5-21-3623811015-3361044348-30300820-1118" // illustrative domain SID
	labExtSecured       = `MS Exchange\Externally Secured Servers`
	labLegacyServers    = `MS Exchange\Legacy Exchange Servers`
	// LabExchangeDomain is the simulated organisation's AD domain and
	// its default (authoritative) accepted domain, the same name the IIS
	// simulation uses.
	LabExchangeDomain = "corp.example"
	// LabExchangeServerIP is the simulated server's own address, used in
	// specific-address bindings ("192.0.2.25:25"; TEST-NET-1, RFC 5737).
	LabExchangeServerIP = "192.0.2.25"
)

var (
	knownAuth = []string{"None", "Tls", "Integrated", "BasicAuth", "BasicAuthRequireTLS", "ExchangeServer", "ExternalAuthoritative"}
	knownPG   = []string{"None", "AnonymousUsers", "ExchangeUsers", "ExchangeServers", "ExchangeLegacyServers", "Partners", "Custom"}
)

type exConnector struct {
	name, role   string
	enabled      bool
	bindings     []string
	ranges       []string
	auth, groups []string
	explicit     []remediate.ExchangeACE // ACEs added with Add-ADPermission (plus inherited ones)
	comment      string                  // -Comment
}

// ExchangeHost is a simulated Exchange server (lab.Host).
type ExchangeHost struct {
	mu         sync.Mutex
	info       remediate.HostInfo
	roleAware  bool
	anonName   string
	authName   string
	connectors []*exConnector
	domains    []remediate.ExchangeAcceptedDomain
	// inherited are ACEs every connector inherits from the server's
	// Protocols container (new connectors too).
	inherited []remediate.ExchangeACE
	loadError string
	loader    string // exinfo's loader: "remote" unless set
	// Domain controllers (dcs[0] = labDC unless AddDomainController):
	// a script without -DomainController is answered by the next one in
	// turn; a write is seen by the other DCs only after replDelay
	// (replica holds what each of them still shows).
	dcs       []string
	rr        int
	replDelay time.Duration
	replica   map[string]*exSnapshot
	replUntil time.Time
	now       func() time.Time
	// scriptDCs records the DC that answered each exchange-* script.
	scriptDCs []string
	writes    []map[string]string
}

var _ Host = (*ExchangeHost)(nil)

func allRanges() []string {
	return []string{"0.0.0.0-255.255.255.255", "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}
}

func bind(port int) []string {
	p := strconv.Itoa(port)
	return []string{"0.0.0.0:" + p, "[::]:" + p}
}

func exchangeHostInfo(version, build, osCaption, osVersion, ps string, roles []string, frontend bool) remediate.HostInfo {
	svc := func(name string, present bool) remediate.ServiceInfo {
		if !present {
			return remediate.ServiceInfo{Name: name}
		}
		return remediate.ServiceInfo{Name: name, Present: true, State: "Running", StartMode: "Auto"}
	}
	return remediate.HostInfo{ComputerName: labServer, Domain: LabExchangeDomain, OSCaption: osCaption, OSVersion: osVersion,
		PSVersion: ps, Is64BitProcess: true, ExchangeVersion: version, ExchangeBuild: build, ExchangeRoles: roles,
		Services: []remediate.ServiceInfo{svc("SMTPSVC", false), svc("MSExchangeTransport", true),
			svc("MSExchangeFrontEndTransport", frontend), svc("MSExchangeSA", false)},
		WinRSMaxMemoryMB: winrsQuota(ps), WinRSMaxMemorySource: "wsman", Platform: remediate.PlatformExchange}
}

// winrsQuota is WinRM's default MaxMemoryPerShellMB for a host with
// PowerShell ps: 150 MB with WinRM 2.0 (PowerShell 2.0), 1024 MB later.
// detect.ps1 reads it from the WSMan: drive, as doctor.ps1 does (the lab
// answers both alike: HostConditions.QuotasUnreadable makes the drive
// unreadable for both).
func winrsQuota(ps string) int {
	if strings.HasPrefix(ps, "2.") {
		return 150
	}
	return 1024
}

// newExchange15 builds a 2013-model Mailbox server (2016, 2019, SE) with
// the default receive connectors of [S33] and one authoritative domain.
func newExchange15(version, build, osCaption, osVersion string) *ExchangeHost {
	roles := []string{"AdminTools", "Cafe", "ClientAccess", "FrontendTransport", "HubTransport", "Mailbox"}
	if version == "2016" {
		roles = append(roles, "UnifiedMessaging")
	}
	full := []string{"Tls", "Integrated", "BasicAuth", "BasicAuthRequireTLS", "ExchangeServer"}
	h := &ExchangeHost{info: exchangeHostInfo(version, build, osCaption, osVersion, "5.1.14393.0", roles, true),
		roleAware: true, anonName: labAnonEnglish, authName: labAuthUsersEnglish}
	if version != "2016" {
		h.info.PSVersion = "5.1.17763.1"
	}
	h.connectors = []*exConnector{
		{name: "Default " + labServer, role: "HubTransport", enabled: true, bindings: bind(2525), ranges: allRanges(),
			auth: full, groups: []string{"ExchangeUsers", "ExchangeServers", "ExchangeLegacyServers"}},
		{name: "Client Proxy " + labServer, role: "HubTransport", enabled: true, bindings: bind(465), ranges: allRanges(),
			auth: full, groups: []string{"ExchangeUsers", "ExchangeServers"}},
		{name: "Default Frontend " + labServer, role: "FrontendTransport", enabled: true, bindings: bind(25), ranges: allRanges(),
			auth: full, groups: []string{"AnonymousUsers", "ExchangeServers", "ExchangeLegacyServers"}},
		{name: "Outbound Proxy Frontend " + labServer, role: "FrontendTransport", enabled: true, bindings: bind(717), ranges: allRanges(),
			auth: full, groups: []string{"ExchangeServers"}},
		{name: "Client Frontend " + labServer, role: "FrontendTransport", enabled: true, bindings: bind(587), ranges: allRanges(),
			auth: []string{"Tls", "Integrated", "BasicAuth", "BasicAuthRequireTLS"}, groups: []string{"ExchangeUsers"}},
	}
	h.domains = []remediate.ExchangeAcceptedDomain{{Name: LabExchangeDomain, DomainName: LabExchangeDomain, DomainType: "Authoritative", Default: true}}
	return h
}

func (h *ExchangeHost) anonACE() remediate.ExchangeACE {
	return remediate.ExchangeACE{User: h.anonName, SID: sidAnonymousLogon}
}

func (h *ExchangeHost) connector(name string) *exConnector {
	for _, c := range h.connectors {
		if strings.EqualFold(c.name, name) {
			return c
		}
	}
	return nil
}

// Exchange2016Default is a freshly installed Exchange 2016 CU23 Mailbox
// server on Windows Server 2016: closed.
func Exchange2016Default() *ExchangeHost {
	return newExchange15("2016", "15.1.2507.6", "Microsoft Windows Server 2016 Datacenter", "10.0.14393")
}

// Exchange2016OpenCustomConnector is Exchange 2016 with a custom
// FrontendTransport connector "App Relay" bound to the server's address,
// RemoteIPRanges 0.0.0.0-255.255.255.255 and ANONYMOUS LOGON granted
// ms-Exch-SMTP-Accept-Any-Recipient: the relay recipe of [S32] with the
// ranges left wide open. Registered as "exchange2016".
func Exchange2016OpenCustomConnector() *ExchangeHost {
	h := Exchange2016Default()
	h.connectors = append(h.connectors, &exConnector{name: "App Relay", role: "FrontendTransport", enabled: true,
		bindings: []string{LabExchangeServerIP + ":25"}, ranges: []string{"0.0.0.0-255.255.255.255"},
		auth: []string{"Tls"}, groups: []string{"AnonymousUsers"}, explicit: []remediate.ExchangeACE{h.anonACE()}})
	return h
}

// Exchange2016ExternalAuthoritative is Exchange 2016 with a custom
// connector "Partner Relay" (ExternalAuthoritative + ExchangeServers,
// method B of [S32]) accepting every address.
func Exchange2016ExternalAuthoritative() *ExchangeHost {
	h := Exchange2016Default()
	h.connectors = append(h.connectors, &exConnector{name: "Partner Relay", role: "FrontendTransport", enabled: true,
		bindings: []string{LabExchangeServerIP + ":25"}, ranges: []string{"0.0.0.0-255.255.255.255"},
		auth: []string{"Tls", "ExternalAuthoritative"}, groups: []string{"ExchangeServers"}})
	return h
}

// Exchange2016WildcardAcceptedDomain is Exchange 2016 with an accepted
// domain "*" of type InternalRelay: mail for every domain is accepted
// from anyone and forwarded.
func Exchange2016WildcardAcceptedDomain() *ExchangeHost {
	h := Exchange2016Default()
	h.domains = append(h.domains, remediate.ExchangeAcceptedDomain{Name: "All Domains", DomainName: "*", DomainType: "InternalRelay"})
	return h
}

// Exchange2016InternalRelayDomain is Exchange 2016 sharing the address
// space of partner.example with another mail system (InternalRelay).
func Exchange2016InternalRelayDomain() *ExchangeHost {
	h := Exchange2016Default()
	h.domains = append(h.domains, remediate.ExchangeAcceptedDomain{Name: "partner.example", DomainName: "partner.example", DomainType: "InternalRelay"})
	return h
}

// Exchange2016InheritedAnonymous is the open custom connector of
// Exchange2016OpenCustomConnector whose anonymous relay right is inherited
// from a parent object rather than set on the connector.
func Exchange2016InheritedAnonymous() *ExchangeHost {
	h := Exchange2016OpenCustomConnector()
	c := h.connector("App Relay")
	c.explicit = []remediate.ExchangeACE{{User: h.anonName, SID: sidAnonymousLogon, Inherited: true}}
	return h
}

// Exchange2016InheritedServerACEs is Exchange2016OpenCustomConnector where
// every connector, new ones included, inherits Accept-Any-Recipient for
// MS Exchange\Hub Transport Servers from a parent object: plans must not
// depend on what a new connector inherits.
func Exchange2016InheritedServerACEs() *ExchangeHost {
	h := Exchange2016OpenCustomConnector()
	h.inherited = []remediate.ExchangeACE{{User: `MS Exchange\Hub Transport Servers`, Inherited: true}}
	return h
}

// Exchange2016German is Exchange2016OpenCustomConnector on a German
// Windows: ANONYMOUS LOGON is NT-AUTORITÄT\ANONYMOUS-ANMELDUNG [S39].
func Exchange2016German() *ExchangeHost {
	h := Exchange2016Default()
	h.anonName, h.authName = labAnonGerman, labAuthUsersGerman
	h.info.OSCaption = "Microsoft Windows Server 2016 Datacenter"
	h.connectors = append(h.connectors, &exConnector{name: "App Relay", role: "FrontendTransport", enabled: true,
		bindings: []string{LabExchangeServerIP + ":25"}, ranges: []string{"0.0.0.0-255.255.255.255"},
		auth: []string{"Tls"}, groups: []string{"AnonymousUsers"}, explicit: []remediate.ExchangeACE{h.anonACE()}})
	return h
}

// Exchange2019Closed is a freshly installed Exchange 2019 CU14 server on
// Windows Server 2019: no connector lets anonymous senders relay.
func Exchange2019Closed() *ExchangeHost {
	return newExchange15("2019", "15.2.1544.4", "Microsoft Windows Server 2019 Datacenter", "10.0.17763")
}

// Exchange2019AnonDefaultFrontend is Exchange 2019 where an admin granted
// ANONYMOUS LOGON ms-Exch-SMTP-Accept-Any-Recipient directly on the
// Internet-facing "Default Frontend EX1". Registered as "exchange2019".
func Exchange2019AnonDefaultFrontend() *ExchangeHost {
	h := Exchange2019Closed()
	c := h.connector("Default Frontend " + labServer)
	c.explicit = append(c.explicit, h.anonACE())
	return h
}

// ExchangeSEClosed is Exchange Server Subscription Edition RTM (build
// 15.2.2562.17) on Windows Server 2022, closed.
func ExchangeSEClosed() *ExchangeHost {
	h := newExchange15("SE", "15.2.2562.17", "Microsoft Windows Server 2022 Datacenter", "10.0.20348")
	return h
}

// Exchange2010OpenDefault is Exchange 2010 SP3 (Hub, CAS, Mailbox) on
// Windows Server 2008 R2 with PowerShell 2.0: no TransportRole, Hub
// Transport connectors only; the admin made the Internet-facing "Default
// EX1" connector accept anonymous mail and granted ANONYMOUS LOGON the
// relay right on it. Registered as "exchange2010".
func Exchange2010OpenDefault() *ExchangeHost {
	return newHubOnly(exchangeHostInfo("2010", "14.3.123.4", "Microsoft Windows Server 2008 R2 Standard", "6.1.7601", "2.0",
		[]string{"AdminTools", "ClientAccess", "HubTransport", "Mailbox"}, false), "remote")
}

// Exchange2007OpenDefault is Exchange2010OpenDefault on Exchange 2007
// SP3 (Windows Server 2008 SP2, PowerShell 2.0 from WMF 2.0, which WinRM
// needs; the cmdlets come from the Admin snap-in). Registered as
// "exchange2007".
func Exchange2007OpenDefault() *ExchangeHost {
	return newHubOnly(exchangeHostInfo("2007", "8.3.83.6", "Microsoft Windows Server 2008 Standard", "6.0.6002", "2.0",
		[]string{"AdminTools", "ClientAccess", "HubTransport", "Mailbox"}, false), "snapin-2007")
}

func newHubOnly(info remediate.HostInfo, loader string) *ExchangeHost {
	h := &ExchangeHost{info: info, loader: loader, anonName: labAnonEnglish, authName: labAuthUsersEnglish}
	h.connectors = []*exConnector{
		{name: "Default " + labServer, enabled: true, bindings: bind(25), ranges: allRanges(),
			auth:     []string{"Tls", "Integrated", "BasicAuth", "BasicAuthRequireTLS", "ExchangeServer"},
			groups:   []string{"AnonymousUsers", "ExchangeUsers", "ExchangeServers", "ExchangeLegacyServers"},
			explicit: []remediate.ExchangeACE{h.anonACE()}},
		{name: "Client " + labServer, enabled: true, bindings: bind(587), ranges: allRanges(),
			auth: []string{"Tls", "Integrated", "BasicAuth", "BasicAuthRequireTLS"}, groups: []string{"ExchangeUsers"}},
	}
	h.domains = []remediate.ExchangeAcceptedDomain{{Name: LabExchangeDomain, DomainName: LabExchangeDomain, DomainType: "Authoritative", Default: true}}
	return h
}

// SetLoadError makes every exchange-* script fail to load the Exchange
// Management Shell with msg (e.g. the second-hop failure).
func (h *ExchangeHost) SetLoadError(msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.loadError = msg
}

// SetLoader sets how the simulated loader got the Exchange cmdlets:
// "remote" (the default), "snapin" (Connect-ExchangeServer failed on
// 2010+ and the bare snap-in was loaded: writes are refused without
// allow_snapin=yes), "snapin-2007", "edge" or "present".
func (h *ExchangeHost) SetLoader(loader string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.loader = loader
}

// Writes returns the parameters of every exchange-write run, verbatim.
func (h *ExchangeHost) Writes() []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]map[string]string, len(h.writes))
	for i, w := range h.writes {
		out[i] = map[string]string{}
		for k, v := range w {
			out[i][k] = v
		}
	}
	return out
}

// State returns the server's state as exchange-read reports it.
func (h *ExchangeHost) State() *remediate.ExchangeState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stateLocked()
}

func (h *ExchangeHost) stateLocked() *remediate.ExchangeState {
	loader := h.loader
	if loader == "" {
		loader = "remote"
	}
	s := &remediate.ExchangeState{Server: labServer, Loader: loader, AnonymousSID: sidAnonymousLogon,
		AnonymousName: h.anonName, RoleAware: h.roleAware}
	for _, c := range h.connectors {
		ec := remediate.ExchangeConnector{Identity: labServer + `\` + c.name, Name: c.name, Server: labServer,
			Enabled: c.enabled, Bindings: exClone(c.bindings), RemoteIPRanges: exClone(c.ranges),
			AuthMechanism: exClone(c.auth), PermissionGroups: exClone(c.groups), Comment: c.comment}
		if h.roleAware {
			ec.TransportRole = c.role
		}
		ec.AnyRecipient = append(append(h.groupACEs(c), c.explicit...), h.inherited...)
		s.Connectors = append(s.Connectors, ec)
	}
	s.Domains = append(s.Domains, h.domains...)
	s.Normalize()
	return s
}

// groupACEs are the Accept-Any-Recipient grants Exchange derives from
// PermissionGroups and AuthMechanism [S33]: ExchangeUsers -> Authenticated
// Users; ExchangeServers -> Exchange Servers, plus Externally Secured
// Servers with ExternalAuthoritative; ExchangeLegacyServers -> Legacy
// Exchange Servers. AnonymousUsers and Partners do not include the right.
func (h *ExchangeHost) groupACEs(c *exConnector) []remediate.ExchangeACE {
	var a []remediate.ExchangeACE
	has := func(list []string, s string) bool { return exContainsFold(list, s) }
	if has(c.groups, "ExchangeUsers") {
		a = append(a, remediate.ExchangeACE{User: h.authName, SID: sidAuthenticatedUsers})
	}
	if has(c.groups, "ExchangeServers") {
		a = append(a, remediate.ExchangeACE{User: labExchangeServers, SID: labExchServersSID})
		if has(c.auth, "ExternalAuthoritative") {
			a = append(a, remediate.ExchangeACE{User: labExtSecured})
		}
	}
	if has(c.groups, "ExchangeLegacyServers") {
		a = append(a, remediate.ExchangeACE{User: labLegacyServers})
	}
	return a
}

// HostInfo implements Host.
func (h *ExchangeHost) HostInfo() remediate.HostInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	info := h.info
	info.ExchangeRoles = exClone(h.info.ExchangeRoles)
	info.Services = append([]remediate.ServiceInfo(nil), h.info.Services...)
	return info
}

// LocalDomains implements Host: the authoritative accepted domains
// without wildcards.
func (h *ExchangeHost) LocalDomains() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ds []string
	for _, d := range h.domains {
		if strings.EqualFold(d.DomainType, "Authoritative") && !strings.Contains(d.DomainName, "*") {
			ds = append(ds, strings.ToLower(d.DomainName))
		}
	}
	return ds
}

// RelayAllowed implements Host. The connector answering client on port 25
// is the one whose RemoteIPRanges match it most specifically (receiving,
// exchange_relay.go). Relay is allowed when it grants ANONYMOUS LOGON
// Accept-Any-Recipient, or is ExternalAuthoritative, or rcptDomain matches
// a relay (InternalRelay/ExternalRelay) accepted domain, including "*"; an
// authenticated client relays when the connector grants ExchangeUsers, or
// when a client submission connector it can reach does (the lab's SMTP face
// is one port; a real client would use 587).
func (h *ExchangeHost) RelayAllowed(client netip.Addr, authenticated bool, rcptDomain string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	client = client.Unmap()
	c := h.receiving(client, 25)
	if c == nil {
		return false
	}
	if relayDomainMatches(h.domains, rcptDomain) {
		return true
	}
	if h.grantsAnonymous(c) || exContainsFold(c.auth, "ExternalAuthoritative") {
		return true
	}
	if !authenticated {
		return false
	}
	if exContainsFold(c.groups, "ExchangeUsers") {
		return true
	}
	for _, o := range h.connectors {
		if o.enabled && exContainsFold(o.groups, "ExchangeUsers") && o.matchSize(client) != nil {
			return true
		}
	}
	return false
}

func relayDomainMatches(ds []remediate.ExchangeAcceptedDomain, rcpt string) bool {
	rcpt = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(rcpt), "."))
	for _, d := range ds {
		if !strings.EqualFold(d.DomainType, "InternalRelay") && !strings.EqualFold(d.DomainType, "ExternalRelay") {
			continue
		}
		dn := strings.ToLower(d.DomainName)
		switch {
		case dn == "*":
			return true
		case strings.HasPrefix(dn, "*."):
			if strings.HasSuffix(rcpt, dn[1:]) {
				return true
			}
		case dn == rcpt:
			return true
		}
	}
	return false
}

// Handle implements Host: a script run without an explicit second-hop
// credential (Dispatch answers those with the double-hop failure unless
// the host is an Edge server).
func (h *ExchangeHost) Handle(script string, params map[string]string) ([]psframe.Record, int, string) {
	return h.handle(script, params, false)
}

// HandleHop implements HopHandler.
func (h *ExchangeHost) HandleHop(script string, params map[string]string, explicit bool) ([]psframe.Record, int, string) {
	return h.handle(script, params, explicit)
}

func (h *ExchangeHost) handle(script string, params map[string]string, explicit bool) ([]psframe.Record, int, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch script {
	case remediate.DetectScript:
		return remediate.EncodeHostInfo(h.info), 0, ""
	case remediate.ExchangeReadScript, remediate.ExchangeWriteScript:
	default:
		return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).
			Set("message", "The term '"+script+"' is not recognized as the name of a cmdlet, function, script file, or operable program.")}, 1, ""
	}
	if h.loadError != "" {
		return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).Set("message", h.loadError).Set("kind", "load")}, 3, ""
	}
	loader := h.loaderLocked(explicit)
	dc, ok := h.pickDC(params[remediate.DomainControllerParam])
	if !ok {
		return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).
			Set("message", "Exchange Management Shell could not be loaded: the shell loaded but cannot read Active Directory (Get-ExchangeServer): "+
				"Could not find or connect to the Active Directory server '"+params[remediate.DomainControllerParam]+"'. The LDAP server is unavailable.").
			Set("type", "Microsoft.Exchange.Data.Directory.ADTransientException").Set("hresult", "0x8007203A").Set("kind", "ad")}, 3, ""
	}
	h.scriptDCs = append(h.scriptDCs, dc)
	if script == remediate.ExchangeReadScript {
		st := h.stateAtLocked(dc)
		st.Loader, st.DomainController = loader, dc
		return exReadRecs(st), 0, ""
	}
	if loader == "snapin" && params["allow_snapin"] != "yes" {
		return []psframe.Record{*errRec("refusing to write through the bare Exchange snap-in: Microsoft supports it on Exchange 2010 and later for *-TransportAgent cmdlets only (\"may result in irreparable damage\"); fix the Exchange remote shell or pass --force").
			Set("kind", "unsupported-shell")}, 2, ""
	}
	h.beforeWriteLocked(dc)
	cp := map[string]string{}
	for k, v := range params {
		if k != psframe.NonceParam {
			cp[k] = v
		}
	}
	h.writes = append(h.writes, cp)
	ops, err := exWriteOps(params)
	if err != nil {
		return []psframe.Record{*errRec(err.Error())}, 1, ""
	}
	var recs []psframe.Record
	for i, op := range ops {
		err := op.err
		if err == nil {
			err = h.apply(op)
		}
		if err != nil {
			recs = append(recs, *errRec(err.Error()).Set("op", strconv.Itoa(i+1)).Set("kind", op.Kind))
			return recs, 1, ""
		}
		recs = append(recs, *psframe.NewRecord("done").Set("op", strconv.Itoa(i+1)).Set("kind", op.Kind))
	}
	return recs, 0, ""
}

// loaderLocked is exinfo's loader for a run: how the real loader would
// have loaded the cmdlets with or without an explicit credential.
func (h *ExchangeHost) loaderLocked(explicit bool) string {
	switch {
	case h.loader == "snapin-2007" && explicit:
		return "snapin-2007-netonly"
	case h.loader == "" || h.loader == "remote":
		if explicit {
			return "remote-explicit"
		}
		return "remote"
	}
	return h.loader
}

// exSnapshot is what a domain controller that has not replicated a write
// yet still shows.
type exSnapshot struct {
	connectors []*exConnector
	domains    []remediate.ExchangeAcceptedDomain
}

func (h *ExchangeHost) snapshotLocked() *exSnapshot {
	sn := &exSnapshot{domains: append([]remediate.ExchangeAcceptedDomain(nil), h.domains...)}
	for _, c := range h.connectors {
		cc := *c
		cc.bindings, cc.ranges, cc.auth, cc.groups = exClone(c.bindings), exClone(c.ranges), exClone(c.auth), exClone(c.groups)
		cc.explicit = append([]remediate.ExchangeACE(nil), c.explicit...)
		sn.connectors = append(sn.connectors, &cc)
	}
	return sn
}

func (h *ExchangeHost) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

// AddDomainController adds a second (third, ...) domain controller that
// sees writes made through another DC only delay later (AD replication):
// a read-back from it right after a write shows the old state. Scripts
// without -DomainController are answered by the DCs in turn.
func (h *ExchangeHost) AddDomainController(name string, delay time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.dcs) == 0 {
		h.dcs = []string{labDC}
	}
	h.dcs = append(h.dcs, name)
	h.replDelay = delay
}

// ScriptDCs returns the domain controller that answered each exchange-*
// script run so far.
func (h *ExchangeHost) ScriptDCs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.scriptDCs...)
}

// pickDC returns the DC that answers a script: the pinned one (it must
// exist), else the next in turn.
func (h *ExchangeHost) pickDC(pinned string) (string, bool) {
	dcs := h.dcs
	if len(dcs) == 0 {
		dcs = []string{labDC}
	}
	if pinned != "" {
		for _, d := range dcs {
			if strings.EqualFold(d, pinned) {
				return d, true
			}
		}
		return "", false
	}
	d := dcs[h.rr%len(dcs)]
	h.rr++
	return d, true
}

// stateAtLocked is the state as dc shows it.
func (h *ExchangeHost) stateAtLocked(dc string) *remediate.ExchangeState {
	if sn := h.replica[dc]; sn != nil && h.clock().Before(h.replUntil) {
		conns, doms := h.connectors, h.domains
		h.connectors, h.domains = sn.connectors, sn.domains
		defer func() { h.connectors, h.domains = conns, doms }()
	}
	return h.stateLocked()
}

// beforeWriteLocked makes the other DCs keep showing the current state
// until the write has replicated.
func (h *ExchangeHost) beforeWriteLocked(dc string) {
	if len(h.dcs) < 2 {
		return
	}
	now := h.clock()
	if h.replica == nil || !now.Before(h.replUntil) {
		h.replica = map[string]*exSnapshot{}
	}
	sn := h.snapshotLocked()
	for _, d := range h.dcs {
		if !strings.EqualFold(d, dc) && h.replica[d] == nil {
			h.replica[d] = sn
		}
	}
	delete(h.replica, dc)
	h.replUntil = now.Add(h.replDelay)
}

func errRec(msg string) *psframe.Record {
	return psframe.NewRecord(psframe.ErrorRecord).Set("message", msg)
}

func notFound(id string) error {
	return fmt.Errorf("The operation couldn't be performed because object '%s' couldn't be found on '%s'.", id, labDC)
}

// connectorByIdentity resolves "SERVER\Name" (or a bare name, as the
// cmdlets accept).
func (h *ExchangeHost) connectorByIdentity(id string) (*exConnector, error) {
	name := id
	if srv, n, ok := strings.Cut(id, `\`); ok {
		if !strings.EqualFold(srv, labServer) {
			return nil, notFound(id)
		}
		name = n
	}
	if c := h.connector(name); c != nil {
		return c, nil
	}
	return nil, notFound(id)
}

func (h *ExchangeHost) apply(op exOp) error {
	switch op.Kind {
	case exOpNewConnector:
		return h.newConnector(op)
	case exOpSetConnector:
		c, err := h.connectorByIdentity(op.Identity)
		if err != nil {
			return err
		}
		next := *c
		for _, f := range op.Set {
			switch f {
			case exFieldEnabled:
				next.enabled = op.Enabled
			case exFieldBindings:
				next.bindings = exClone(op.Bindings)
			case exFieldRanges:
				next.ranges = exClone(op.Ranges)
			case exFieldAuth:
				next.auth = flagsOrNone(op.Auth)
			case exFieldGroups:
				next.groups = flagsOrNone(op.Groups)
			default:
				return fmt.Errorf("A parameter cannot be found that matches parameter name '%s'.", f)
			}
		}
		if err := h.validate(&next, c); err != nil {
			return err
		}
		*c = next
		return nil
	case exOpRemoveConnector:
		c, err := h.connectorByIdentity(op.Identity)
		if err != nil {
			return err
		}
		for i, x := range h.connectors {
			if x == c {
				h.connectors = append(h.connectors[:i], h.connectors[i+1:]...)
				break
			}
		}
		return nil
	case exOpAddACE, exOpRemoveACE:
		c, err := h.connectorByIdentity(op.Identity)
		if err != nil {
			return err
		}
		ace, err := h.principal(op.User, op.SID)
		if err != nil {
			return err
		}
		idx := -1
		for i, a := range c.explicit {
			if !a.Inherited && strings.EqualFold(a.User, ace.User) {
				idx = i
			}
		}
		if op.Kind == exOpAddACE {
			if idx < 0 {
				c.explicit = append(c.explicit, ace)
			}
			return nil
		}
		if idx < 0 {
			return fmt.Errorf("Can't remove the access control entry on the object \"%s\" for account \"%s\" because the ACE doesn't exist on the object.", op.Identity, ace.User)
		}
		// The right goes for the principal, from every explicit ACE
		// carrying it (how Exchange treats duplicates is UNVERIFIED).
		var keep []remediate.ExchangeACE
		for _, a := range c.explicit {
			if a.Inherited || !strings.EqualFold(a.User, ace.User) {
				keep = append(keep, a)
			}
		}
		c.explicit = keep
		return nil
	case exOpSetDomain:
		d := h.domain(op.Identity)
		if d == nil {
			return notFound(op.Identity)
		}
		if !validDomainType(op.DomainType) {
			return fmt.Errorf("Cannot bind parameter 'DomainType'. Cannot convert value \"%s\" to type \"Microsoft.Exchange.Data.Directory.SystemConfiguration.AcceptedDomainType\".", op.DomainType)
		}
		d.DomainType = op.DomainType
		return nil
	case exOpNewDomain:
		if h.domain(op.Name) != nil || op.Name == "" {
			return fmt.Errorf("An accepted domain with the name '%s' already exists.", op.Name)
		}
		if !validDomainType(op.DomainType) || !validDomainName(op.DomainName) {
			return fmt.Errorf("Cannot create accepted domain '%s' with DomainName '%s' and DomainType '%s'.", op.Name, op.DomainName, op.DomainType)
		}
		h.domains = append(h.domains, remediate.ExchangeAcceptedDomain{Name: op.Name, DomainName: op.DomainName, DomainType: op.DomainType})
		return nil
	case exOpRemoveDomain:
		for i, d := range h.domains {
			if strings.EqualFold(d.Name, op.Identity) {
				if d.Default {
					return fmt.Errorf("The default accepted domain '%s' can't be removed.", d.Name)
				}
				h.domains = append(h.domains[:i], h.domains[i+1:]...)
				return nil
			}
		}
		return notFound(op.Identity)
	}
	return fmt.Errorf("unknown operation kind: %s", op.Kind)
}

func (h *ExchangeHost) newConnector(op exOp) error {
	if op.Server != "" && !strings.EqualFold(op.Server, labServer) {
		return notFound(op.Server)
	}
	if op.Name == "" || len([]rune(op.Name)) > 64 {
		return fmt.Errorf("The length of the property is too long. The maximum length is 64 and the length of the value provided is %d.", len([]rune(op.Name)))
	}
	for _, r := range op.Name {
		if unicode.IsControl(r) || r == '\\' {
			return fmt.Errorf("The name \"%s\" contains invalid characters.", op.Name)
		}
	}
	if h.connector(op.Name) != nil {
		return fmt.Errorf("A Receive connector with the name \"%s\" already exists on server \"%s\".", op.Name, labServer)
	}
	c := &exConnector{name: op.Name, enabled: true, bindings: exClone(op.Bindings), ranges: exClone(op.Ranges),
		auth: flagsOrNone(op.Auth), groups: flagsOrNone(op.Groups), comment: op.Comment}
	switch {
	case h.roleAware && op.Role == "":
		c.role = "HubTransport" // New-ReceiveConnector's default role on a Mailbox server
	case h.roleAware:
		if op.Role != "FrontendTransport" && op.Role != "HubTransport" {
			return fmt.Errorf("Cannot bind parameter 'TransportRole' to the target. Exception setting \"TransportRole\": \"The value '%s' is not valid.\"", op.Role)
		}
		c.role = op.Role
	case op.Role != "":
		return fmt.Errorf("A parameter cannot be found that matches parameter name 'TransportRole'.")
	}
	if err := h.validate(c, nil); err != nil {
		return err
	}
	h.connectors = append(h.connectors, c)
	return nil
}

// validate checks a connector's values as the cmdlets do: IP ranges (IP,
// a-b range, CIDR), bindings IP:port, enum values, and that no other
// connector of the role has the same binding with the same remote range,
// or one that overlaps it partly (Exchange requires a unique combination;
// overlapping ranges only "as long as one IP address range is completely
// overlapped by another", New-ReceiveConnector).
func (h *ExchangeHost) validate(c, self *exConnector) error {
	if len(c.bindings) == 0 {
		return fmt.Errorf("The Bindings parameter can't be empty.")
	}
	for _, b := range c.bindings {
		ip, port, ok := splitBindingLab(b)
		if !ok || port < 1 || port > 65535 {
			return fmt.Errorf("Cannot bind parameter 'Bindings'. Cannot convert value \"%s\" to type \"Microsoft.Exchange.Data.IPBinding\".", b)
		}
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("Cannot bind parameter 'Bindings'. Cannot convert value \"%s\" to type \"Microsoft.Exchange.Data.IPBinding\".", b)
		}
	}
	if len(c.ranges) == 0 {
		return fmt.Errorf("The RemoteIPRanges parameter can't be empty.")
	}
	for _, r := range c.ranges {
		if _, err := parseExIPRange(r); err != nil {
			return fmt.Errorf("Cannot bind parameter 'RemoteIPRanges'. Cannot convert value \"%s\" to type \"Microsoft.Exchange.Data.IPRange\". Error: \"'%s' isn't a valid IP range.\"", r, r)
		}
	}
	for _, a := range c.auth {
		if !exContainsFold(knownAuth, a) {
			return fmt.Errorf("Cannot bind parameter 'AuthMechanism'. Cannot convert value \"%s\" to type \"Microsoft.Exchange.Data.AuthMechanisms\".", a)
		}
	}
	for _, g := range c.groups {
		if !exContainsFold(knownPG, g) {
			return fmt.Errorf("Cannot bind parameter 'PermissionGroups'. Cannot convert value \"%s\" to type \"Microsoft.Exchange.Data.PermissionGroups\".", g)
		}
	}
	for _, o := range h.connectors {
		if o == self || !strings.EqualFold(o.role, c.role) {
			continue
		}
		for _, b := range c.bindings {
			if !exContainsFold(o.bindings, b) {
				continue
			}
			for _, r := range c.ranges {
				for _, or := range o.ranges {
					x, _ := parseExIPRange(r)
					y, err := parseExIPRange(or)
					if err == nil && (x == y || partlyOverlap(x, y)) {
						return fmt.Errorf("The values that you specified for the Bindings and RemoteIPRanges parameters conflict with the settings on Receive connector \"%s\\%s\". A Receive connector must have a unique combination of a local IP address & port bindings and remote IP address ranges.", labServer, o.name)
					}
				}
			}
		}
	}
	return nil
}

// principal resolves an ACE principal as Add-/Remove-ADPermission would:
// by SID when given (the script translates it), else by name.
func (h *ExchangeHost) principal(user, sid string) (remediate.ExchangeACE, error) {
	switch {
	case sid == sidAnonymousLogon || (sid == "" && strings.EqualFold(user, h.anonName)):
		return h.anonACE(), nil
	case sid == sidAuthenticatedUsers || (sid == "" && strings.EqualFold(user, h.authName)):
		return remediate.ExchangeACE{User: h.authName, SID: sidAuthenticatedUsers}, nil
	case strings.EqualFold(user, labExchangeServers) || sid == labExchServersSID:
		return remediate.ExchangeACE{User: labExchangeServers, SID: labExchServersSID}, nil
	case strings.EqualFold(user, labExtSecured):
		return remediate.ExchangeACE{User: labExtSecured}, nil
	case strings.EqualFold(user, labLegacyServers):
		return remediate.ExchangeACE{User: labLegacyServers}, nil
	}
	return remediate.ExchangeACE{}, fmt.Errorf("The user or group \"%s\" couldn't be found.", user)
}

func (h *ExchangeHost) domain(name string) *remediate.ExchangeAcceptedDomain {
	for i := range h.domains {
		if strings.EqualFold(h.domains[i].Name, name) {
			return &h.domains[i]
		}
	}
	return nil
}

func validDomainType(t string) bool {
	return t == "Authoritative" || t == "InternalRelay" || t == "ExternalRelay"
}

func validDomainName(d string) bool {
	if d == "*" {
		return true
	}
	d = strings.TrimPrefix(d, "*.")
	if d == "" || strings.ContainsAny(d, " *\\/\"'`$;\n\r") {
		return false
	}
	return !strings.HasPrefix(d, ".") && !strings.HasSuffix(d, ".")
}

// flagsOrNone reads a flags list the way the script passes it: an empty
// list is 'None'; 'None' itself is stored as no flags.
func flagsOrNone(in []string) []string {
	var out []string
	for _, x := range in {
		if !strings.EqualFold(x, "None") {
			out = append(out, x)
		}
	}
	return out
}

func splitBindingLab(b string) (string, int, bool) {
	i := strings.LastIndex(b, ":")
	if i < 0 {
		return "", 0, false
	}
	p, err := strconv.Atoi(b[i+1:])
	if err != nil {
		return "", 0, false
	}
	ip := b[:i]
	if strings.HasPrefix(ip, "[") != strings.HasSuffix(ip, "]") {
		return "", 0, false
	}
	return strings.Trim(ip, "[]"), p, true
}

func exClone(s []string) []string { return append([]string(nil), s...) }

func exContainsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), s) {
			return true
		}
	}
	return false
}
