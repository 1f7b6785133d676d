package lab

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// This file simulates an IIS 6 SMTP server (docs/windows-relay.md §1): the
// metabase values of its virtual servers, read and written by relaylock's
// iis-* scripts through WMI, and the relay decision SMTPSVC takes from
// them. It reads and writes RelayIpList values with its own IPSECLIST codec
// (ipseclist.go) and prints its own records, built from the scripts
// (iis_records.go): the driver's decoders are checked by the lab, not
// shared with it.

// IISScenario is a starting state of a simulated IIS SMTP server.
type IISScenario int

const (
	// IISAllExceptEmpty: "All except the list below" with an empty list
	// (zero-length RelayIpList): an open relay.
	IISAllExceptEmpty IISScenario = iota
	// IISGrantEveryone: "Only the list below" with 0.0.0.0 mask 0.0.0.0.
	IISGrantEveryone
	// IISClosed: "Only the list below" = {127.0.0.1} (GUI sample A),
	// authenticated relay on.
	IISClosed
	// IISUnset: RelayIpList never set (null): only authenticated relay.
	IISUnset
	// IISDenyList: "All except the list below" = {192.0.2.66}.
	IISDenyList
	// IISNoWebWMI: open like IISAllExceptEmpty, but the IIS 6 WMI
	// Compatibility feature is missing, so the scripts cannot read it.
	IISNoWebWMI
	// IISRemoteDomainWildcard: closed list, but a remote domain "*" with
	// "Allow incoming mail to be relayed to this domain".
	IISRemoteDomainWildcard
	// IISAuthGuest: closed list, authenticated relay with Basic
	// authentication and the Guest account enabled.
	IISAuthGuest
	// IISInheritedOpen: the virtual server has no RelayIpList of its own
	// and inherits a zero-length one from the service level.
	IISInheritedOpen
	// IISNoMetabaseCompat: open like IISAllExceptEmpty; ADSI (IIS://)
	// fails as without IIS 6 Metabase Compatibility, WMI works.
	IISNoMetabaseCompat
)

// ScriptCall is one script run the lab received, with its parameters
// (without the nonce) exactly as decoded from the payload.
type ScriptCall struct {
	Script string
	Params map[string]string
}

// iisMetabase is the simulated metabase plus WMI availability, shared by
// the IIS and Exchange 2003 hosts. Callers hold the host's lock.
type iisMetabase struct {
	st     remediate.IISState
	webWMI bool
	// adsiError, when set, is the error ADSI (IIS://) fails with (IIS 6
	// Metabase Compatibility missing); adsiOverride replaces the ADSI
	// view of a virtual server (a host whose IIS reads a list differently
	// from relaylock's decoder).
	adsiError    string
	adsiOverride map[string]remediate.IISADSIView
	// wmiOwnValues makes WMI report a virtual server's own RelayIpList
	// (null when it inherits) instead of the effective, inherited value.
	wmiOwnValues bool
}

// The metabase property RelayIpList is inheritable (attributes inherit |
// reference: RelayIpList Metabase Property, Windows Server 2003): a virtual server without a value of its own enforces
// /LM/SmtpSvc's. The lab's state holds each node's own value. WMI (the
// IIS provider reads with inheritance) reports a server's effective
// value; ADSI's Properties[] reads the node's own value; GetDataPaths says
// which nodes hold one ("own" in the adsi record).

// wmiServer is the virtual server as WMI reports it.
func (m *iisMetabase) wmiServer(vs remediate.IISVirtualServer) remediate.IISVirtualServer {
	if !m.wmiOwnValues && vs.RelayIpList.Null && m.st.ServiceLevel != nil {
		vs.RelayIpList = cloneBlob(m.st.ServiceLevel.RelayIpList)
	}
	return vs
}

// adsiView is ADSI's view of one node whose own value is own.
func (m *iisMetabase) adsiView(name string, own remediate.RelayListBlob) remediate.IISADSIView {
	if m.adsiError != "" {
		return remediate.IISADSIView{Name: name, Error: m.adsiError}
	}
	v := adsiViewOf(name, own)
	if o, ok := m.adsiOverride[strings.ToLower(name)]; ok {
		v = o
		v.Name = name
	}
	if v.Error == "" && v.Own == nil {
		set := !own.Null
		v.Own = &set
	}
	return v
}

// readState is what iis-read reports: the metabase as WMI shows it, plus
// the ADSI view of every virtual server's and the service level's
// RelayIpList.
func (m *iisMetabase) readState() remediate.IISState {
	st := cloneIIS(m.st)
	st.ADSI = nil
	for i, vs := range st.Servers {
		st.Servers[i] = m.wmiServer(vs)
		st.ADSI = append(st.ADSI, m.adsiView(vs.Name, vs.RelayIpList))
	}
	if st.ServiceLevel != nil {
		st.ADSI = append(st.ADSI, m.adsiView(st.ServiceLevel.Name, st.ServiceLevel.RelayIpList))
	}
	return st
}

// IISHost is a simulated IIS 6 SMTP server.
type IISHost struct {
	mu    sync.Mutex
	info  remediate.HostInfo
	mb    iisMetabase
	calls []ScriptCall
}

const labDNSDomain = "corp.example"

func iisBaseState(computer string) remediate.IISState {
	return remediate.IISState{
		Service:      remediate.ServiceInfo{Name: "SMTPSVC", Present: true, State: "Running", StartMode: "Auto"},
		Guest:        &remediate.GuestAccount{Name: "Guest", Enabled: false},
		ServiceLevel: &remediate.IISRelaySettings{Name: "SmtpSvc", RelayIpList: remediate.RelayListBlob{Null: true}},
		Servers: []remediate.IISVirtualServer{{
			Name: "SmtpSvc/1", Comment: "[SMTP Virtual Server #1]",
			RelayIpList: remediate.RelayListBlob{Null: true}, RelayForAuth: relayForAuthOn,
			AuthFlags: "1", AuthAnonymous: true,
		}},
		Domains: []remediate.IISDomain{{
			// The default local domain (SMTP_DEFAULT 0x40) [S4].
			Name: "SmtpSvc/1/Domain/" + strings.ToLower(computer) + "." + labDNSDomain, RouteAction: 0x40,
			RelayIpList: remediate.RelayListBlob{Null: true},
		}, {
			// A local alias domain (SMTP_ALIAS 0x10, as public deploy
			// scripts create them [S55]): the organisation's mail domain.
			Name: "SmtpSvc/1/Domain/" + labDNSDomain, RouteAction: 0x10,
			RelayIpList: remediate.RelayListBlob{Null: true},
		}},
	}
}

// blobOf is the RelayIpList value of l, in the lab's own encoding.
func blobOf(l ipsecList) remediate.RelayListBlob {
	return remediate.RelayListBlob{Bytes: encodeIPSecList(l)}
}

// NewIIS returns a simulated IIS SMTP server (Windows Server 2019,
// PowerShell 5.1) in the given scenario.
func NewIIS(s IISScenario) *IISHost {
	h := &IISHost{
		info: remediate.HostInfo{
			ComputerName: "SMTP01", Domain: labDNSDomain,
			OSCaption: "Microsoft Windows Server 2019 Standard", OSVersion: "10.0.17763",
			PSVersion: "5.1.17763.1", Is64BitProcess: true,
			Services: []remediate.ServiceInfo{
				{Name: "SMTPSVC", Present: true, State: "Running", StartMode: "Auto"},
				{Name: "MSExchangeTransport"}, {Name: "MSExchangeFrontEndTransport"}, {Name: "MSExchangeSA"},
			},
			Features: []remediate.FeatureInfo{{Name: "SMTP-Server", Installed: true}, {Name: "Web-WMI", Installed: true}},
			Platform: remediate.PlatformIIS,
		},
		mb: iisMetabase{webWMI: true},
	}
	st := iisBaseState(h.info.ComputerName)
	vs := &st.Servers[0]
	loopback := blobOf(ipsecList{grant: []ipsecEntry{ipsecHost("127.0.0.1")}, flags: 1})
	switch s {
	case IISAllExceptEmpty:
		vs.RelayIpList = remediate.RelayListBlob{Bytes: []byte{}}
	case IISGrantEveryone:
		vs.RelayIpList = blobOf(ipsecList{grant: []ipsecEntry{ipsecPrefix("0.0.0.0/0")}, flags: 1})
	case IISClosed:
		vs.RelayIpList = loopback
	case IISUnset:
	case IISDenyList:
		vs.RelayIpList = blobOf(ipsecList{grantByDefault: true, deny: []ipsecEntry{ipsecHost("192.0.2.66")}, flags: 1})
	case IISNoWebWMI:
		vs.RelayIpList = remediate.RelayListBlob{Bytes: []byte{}}
		h.mb.webWMI = false
		h.info.Features[1].Installed = false
	case IISRemoteDomainWildcard:
		vs.RelayIpList = loopback
		st.Domains = append(st.Domains, remediate.IISDomain{Name: "SmtpSvc/1/Domain/*", RouteAction: routeActionRelay | 0x2, RelayIpList: remediate.RelayListBlob{Null: true}})
	case IISAuthGuest:
		vs.RelayIpList = loopback
		vs.AuthBasic = true
		vs.AuthFlags = "3"
		st.Guest.Enabled = true
	case IISInheritedOpen:
		st.ServiceLevel.RelayIpList = remediate.RelayListBlob{Bytes: []byte{}}
	case IISNoMetabaseCompat:
		vs.RelayIpList = remediate.RelayListBlob{Bytes: []byte{}}
		// ADSI's "Unknown error (0x80005000)" for a missing IIS provider.
		h.mb.adsiError = "Unknown error (0x80005000)"
	default:
		panic(fmt.Sprintf("lab: unknown IIS scenario %d", s))
	}
	h.mb.st = st
	return h
}

// HostInfo implements Host.
func (h *IISHost) HostInfo() remediate.HostInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return cloneInfo(h.info)
}

func cloneInfo(i remediate.HostInfo) remediate.HostInfo {
	i.Services = append([]remediate.ServiceInfo(nil), i.Services...)
	i.Features = append([]remediate.FeatureInfo(nil), i.Features...)
	i.ExchangeRoles = append([]string(nil), i.ExchangeRoles...)
	return i
}

// LocalDomains implements Host.
func (h *IISHost) LocalDomains() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mb.localDomains()
}

func (m *iisMetabase) localDomains() []string {
	var ds []string
	for _, d := range m.st.Domains {
		if _, name := iisDomainParts(d.Name); d.RouteAction&routeActionRelay == 0 && !strings.Contains(name, "*") {
			ds = append(ds, name)
		}
	}
	sort.Strings(ds)
	return ds
}

// State returns a copy of the metabase state.
func (h *IISHost) State() remediate.IISState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return cloneIIS(h.mb.st)
}

// SetState replaces the metabase state (tests).
func (h *IISHost) SetState(st remediate.IISState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mb.st = cloneIIS(st)
}

// SetWMIReportsOwnValues makes WMI report each virtual server's own
// RelayIpList (null when it inherits) instead of the inherited, effective
// value: the other way a real IIS might answer (UNVERIFIED which).
func (h *IISHost) SetWMIReportsOwnValues(v bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mb.wmiOwnValues = v
}

// SetADSIError makes every ADSI (IIS://) bind fail with msg, as without
// IIS 6 Metabase Compatibility ("" restores ADSI).
func (h *IISHost) SetADSIError(msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mb.adsiError = msg
}

// SetADSIView makes ADSI report v for virtual server name instead of the
// view derived from the metabase bytes (nil removes the override): a host
// whose IIS reads the relay list differently from relaylock's decoder.
func (h *IISHost) SetADSIView(name string, v *remediate.IISADSIView) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mb.adsiOverride == nil {
		h.mb.adsiOverride = map[string]remediate.IISADSIView{}
	}
	if v == nil {
		delete(h.mb.adsiOverride, strings.ToLower(name))
		return
	}
	h.mb.adsiOverride[strings.ToLower(name)] = *v
}

// Calls returns the script runs received so far.
func (h *IISHost) Calls() []ScriptCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ScriptCall(nil), h.calls...)
}

func cloneIIS(st remediate.IISState) remediate.IISState {
	c := st
	if st.Guest != nil {
		g := *st.Guest
		c.Guest = &g
	}
	if st.ServiceLevel != nil {
		s := *st.ServiceLevel
		s.RelayIpList = cloneBlob(s.RelayIpList)
		c.ServiceLevel = &s
	}
	c.Servers = append([]remediate.IISVirtualServer(nil), st.Servers...)
	for i := range c.Servers {
		c.Servers[i].RelayIpList = cloneBlob(c.Servers[i].RelayIpList)
	}
	c.Domains = append([]remediate.IISDomain(nil), st.Domains...)
	for i := range c.Domains {
		c.Domains[i].RelayIpList = cloneBlob(c.Domains[i].RelayIpList)
	}
	return c
}

func cloneBlob(b remediate.RelayListBlob) remediate.RelayListBlob {
	if b.Null {
		return remediate.RelayListBlob{Null: true}
	}
	return remediate.RelayListBlob{Bytes: append([]byte{}, b.Bytes...)}
}

func recordCall(calls *[]ScriptCall, script string, params map[string]string) {
	p := map[string]string{}
	for k, v := range params {
		if k != psframe.NonceParam {
			p[k] = v
		}
	}
	*calls = append(*calls, ScriptCall{Script: script, Params: p})
}

// Handle implements Host.
func (h *IISHost) Handle(script string, params map[string]string) ([]psframe.Record, int, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	recordCall(&h.calls, script, params)
	if script == remediate.DetectScript {
		if err := checkParams(params); err != nil {
			return errorRecord(err.Error(), "bad-parameter"), 1, ""
		}
		return remediate.EncodeHostInfo(h.info), 0, ""
	}
	if recs, code, ok := h.mb.handle(script, params); ok {
		return recs, code, ""
	}
	return errorRecord("lab: the IIS SMTP host does not run script "+script, "unknown-script"), 1, ""
}

// RelayAllowed implements Host: the decision SMTPSVC takes for virtual
// server SmtpSvc/1 (the one the lab's SMTP face stands for).
func (h *IISHost) RelayAllowed(client netip.Addr, authenticated bool, rcptDomain string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return iisRelayAllowed(h.mb.st, "SmtpSvc/1", client, authenticated, rcptDomain)
}

// GuestLogon implements GuestLogoner.
func (h *IISHost) GuestLogon() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return iisGuestLogon(h.mb.st, "SmtpSvc/1")
}

// iisGuestLogon: the virtual server takes Basic logins and the local
// Guest account is enabled, so a failed login logs on as Guest.
func iisGuestLogon(st remediate.IISState, server string) bool {
	vs, ok := iisServer(st, server)
	return ok && vs.AuthBasic && st.Guest != nil && st.Guest.Enabled
}

// iisRelayAllowed decides relaying from the metabase, with the lab's own
// reading of it: a remote domain with the relay flag that matches the
// recipient domain (wildcards included) overrides the Access tab [S14b];
// authenticated clients relay when RelayForAuth is non-zero; otherwise
// the effective RelayIpList decides (null: nobody; zero-length: everyone;
// grant list: listed clients; deny list: everyone else), looking each
// mask's addresses up by binary search in stored order, as IIS is
// believed to (remediate's relayListSorted, UNVERIFIED): an unsorted list
// misses some listed addresses. An undecodable list relays nobody here
// (real IIS behaviour UNVERIFIED).
func iisRelayAllowed(st remediate.IISState, server string, client netip.Addr, authenticated bool, rcptDomain string) bool {
	if !st.Service.Present || st.Service.State != "Running" {
		return false
	}
	vs, ok := iisServer(st, server)
	if !ok {
		return false
	}
	for _, d := range st.Domains {
		srv, name := iisDomainParts(d.Name)
		if strings.EqualFold(srv, vs.Name) && d.RouteAction&routeActionRelay != 0 && remoteDomainMatches(name, rcptDomain) {
			return true
		}
	}
	if authenticated && vs.RelayForAuth != 0 {
		return true
	}
	// RelayIpList is inheritable: a server without a value of its own
	// enforces the service level's.
	eff := vs.RelayIpList
	if eff.Null && st.ServiceLevel != nil {
		eff = st.ServiceLevel.RelayIpList
	}
	if eff.Null {
		return false
	}
	l, err := decodeIPSecList(eff.Bytes)
	if err != nil {
		return false
	}
	if l.grantByDefault {
		return !bsearchListed(l.deny, client)
	}
	return bsearchListed(l.grant, client)
}

// bsearchListed looks client up in each run of same-mask entries by
// binary search over the stored order ("test all mask for this family, do
// bsearch on each", a comment in Microsoft's rdns.hxx).
func bsearchListed(ms []ipsecEntry, client netip.Addr) bool {
	client = client.Unmap()
	if !client.Is4() {
		return false
	}
	c := client.As4()
	for start := 0; start < len(ms); {
		end := start + 1
		for end < len(ms) && ms[end].mask == ms[start].mask {
			end++
		}
		run, mask := ms[start:end], ms[start].mask
		var key [4]byte
		for i := range 4 {
			key[i] = c[i] & mask[i]
		}
		masked := func(i int) [4]byte {
			var a [4]byte
			for j := range 4 {
				a[j] = run[i].addr[j] & mask[j]
			}
			return a
		}
		i := sort.Search(len(run), func(i int) bool { a := masked(i); return bytes.Compare(a[:], key[:]) >= 0 })
		if i < len(run) && masked(i) == key {
			return true
		}
		start = end
	}
	return false
}

// --- script handlers -------------------------------------------------------

var (
	reHexBlob = regexp.MustCompile(`^([0-9A-Fa-f]{2})+$`)
	reInt     = regexp.MustCompile(`^-?[0-9]{1,10}$`)
	reUint    = regexp.MustCompile(`^[0-9]{1,10}$`)
)

// checkParams rejects parameters a script does not read (the lab is
// strict so that drivers cannot rely on ignored input) and missing ones.
func checkParams(params map[string]string, names ...string) error {
	want := map[string]bool{psframe.NonceParam: true}
	for _, n := range names {
		want[n] = true
		if _, ok := params[n]; !ok {
			return fmt.Errorf("lab: missing parameter %q", n)
		}
	}
	for k := range params {
		if !want[k] {
			return fmt.Errorf("lab: unexpected parameter %q", k)
		}
	}
	return nil
}

func errorRecord(msg, kind string) []psframe.Record {
	return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).Set("message", msg).Set("kind", kind)}
}

// missingNamespace is what the iis-* scripts print when root\MicrosoftIISv2
// does not exist (Get-WmiObject: "Invalid namespace" [S56]).
func missingNamespace() []psframe.Record {
	return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).
		Set("message", "Invalid namespace ").
		Set("type", "System.Management.ManagementException").Set("inner", "System.Management.ManagementException").
		Set("hresult", hresultInvalidNamespace).
		Set("fqid", "GetWMIManagementException,Microsoft.PowerShell.Commands.GetWmiObjectCommand").Set("line", "48").
		Set("kind", "feature-missing").Set("feature", "Web-WMI").Set("namespace", `root\MicrosoftIISv2`)}
}

// handle answers the iis-* scripts; ok is false for other scripts.
func (m *iisMetabase) handle(script string, params map[string]string) (recs []psframe.Record, code int, ok bool) {
	switch script {
	case remediate.ScriptIISRead:
		if err := checkParams(params); err != nil {
			return errorRecord(err.Error(), "bad-parameter"), 1, true
		}
		if !m.webWMI {
			return missingNamespace(), 3, true
		}
		return iisReadRecs(m.readState()), 0, true
	case remediate.ScriptIISWrite:
		if err := checkParams(params, "server", "relayiplist", "relayforauth"); err != nil {
			return errorRecord(err.Error(), "bad-parameter"), 1, true
		}
		ril, rfa := params["relayiplist"], params["relayforauth"]
		if ril != "NULL" && ril != "EMPTY" && !reHexBlob.MatchString(ril) {
			return errorRecord("parameter relayiplist is not NULL, EMPTY or hex", "bad-parameter"), 2, true
		}
		if !reInt.MatchString(rfa) {
			return errorRecord("parameter relayforauth is not an integer", "bad-parameter"), 2, true
		}
		n, err := strconv.ParseInt(rfa, 10, 32)
		if err != nil { // [int] conversion overflow: the trap prints it
			return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).Set("message", `Cannot convert value "`+rfa+`" to type "System.Int32".`).Set("type", "System.Management.Automation.RuntimeException")}, 1, true
		}
		if !m.webWMI {
			return missingNamespace(), 3, true
		}
		i := m.serverIndex(params["server"])
		if i < 0 {
			return errorRecord("no SMTP virtual server named "+params["server"], "not-found"), 4, true
		}
		b, _ := blobParam(ril) // the pattern above admits only values it reads
		m.st.Servers[i].RelayIpList = b
		m.st.Servers[i].RelayForAuth = n
		var recs []psframe.Record
		if m.st.ServiceLevel != nil {
			recs = append(recs, iisSvcRec(*m.st.ServiceLevel))
		}
		vs := m.st.Servers[i]
		return append(recs, iisVSRec(m.wmiServer(vs)), iisADSIRec(m.adsiView(vs.Name, vs.RelayIpList))), 0, true
	case remediate.ScriptIISWriteDomain:
		if err := checkParams(params, "domain", "routeaction"); err != nil {
			return errorRecord(err.Error(), "bad-parameter"), 1, true
		}
		ra := params["routeaction"]
		if !reUint.MatchString(ra) {
			return errorRecord("parameter routeaction is not a non-negative integer", "bad-parameter"), 2, true
		}
		n, err := strconv.ParseInt(ra, 10, 32)
		if err != nil {
			return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).Set("message", `Cannot convert value "`+ra+`" to type "System.Int32".`).Set("type", "System.Management.Automation.RuntimeException")}, 1, true
		}
		if !m.webWMI {
			return missingNamespace(), 3, true
		}
		for i := range m.st.Domains {
			if strings.EqualFold(m.st.Domains[i].Name, params["domain"]) { // PowerShell -eq
				m.st.Domains[i].RouteAction = n
				return []psframe.Record{iisDomainRec(m.st.Domains[i])}, 0, true
			}
		}
		return errorRecord("no SMTP domain named "+params["domain"], "not-found"), 4, true
	}
	return nil, 0, false
}

func (m *iisMetabase) serverIndex(name string) int {
	for i := range m.st.Servers {
		if strings.EqualFold(m.st.Servers[i].Name, name) { // PowerShell -eq
			return i
		}
	}
	return -1
}
