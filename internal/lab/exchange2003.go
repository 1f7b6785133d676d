package lab

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// This file simulates an Exchange 2003 server (windows-relay.md §2): the
// SMTP virtual servers' Active Directory objects, the IIS metabase that
// SMTPSVC enforces, and DS2MB, which copies AD into the metabase a
// configurable delay after each AD write (never, with the "never sync"
// fault). The sync is evaluated lazily whenever the host is used, so the
// simulation needs no goroutine. Records come from the builders the
// driver decodes (remediate.EncodeIISState, Ex2003ADRecord).

func init() {
	Register("exchange2003", func() Host { return NewExchange2003(Ex2003Open) })
}

// Ex2003Scenario is a starting state of a simulated Exchange 2003 server.
type Ex2003Scenario int

const (
	// Ex2003Open: AD and metabase agree on "All except the list below"
	// with an empty list: an open relay.
	Ex2003Open Ex2003Scenario = iota
	// Ex2003Default: the Exchange 2003 default, relay list unset and
	// authenticated relay on (closed to anonymous clients) [S26].
	Ex2003Default
	// Ex2003MetabaseOpenADClosed: someone made the metabase open by hand;
	// AD is closed, so the next DS2MB sync closes it again.
	Ex2003MetabaseOpenADClosed
	// Ex2003ADOpenMetabaseClosed: AD is open but not yet synced: the next
	// DS2MB sync opens the relay.
	Ex2003ADOpenMetabaseClosed
	// Ex2003ADUnavailable: open, and LDAP fails as it does over a WinRM
	// session that cannot reach the DC (second hop).
	Ex2003ADUnavailable
	// Ex2003NoADObject: open, and the server's virtual server object is
	// not found under its computer name (as on a cluster, where it sits
	// under the Exchange Virtual Server's name, UNVERIFIED).
	Ex2003NoADObject
)

// DefaultEx2003SyncDelay is how long the simulated DS2MB waits after an AD
// write before copying it into the metabase.
const DefaultEx2003SyncDelay = time.Second

const (
	ex2003Computer = "MAIL03"
	ex2003OrgPath  = ",CN=Servers,CN=First Administrative Group,CN=Administrative Groups,CN=Corp,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=corp,DC=example"
)

var reLDAPAttr = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,63}$`)

// Ex2003DN is the DN of virtual server instance n of the simulated
// server (or of another server in the organisation).
func Ex2003DN(server string, n int) string {
	return fmt.Sprintf("CN=%d,CN=SMTP,CN=Protocols,CN=%s%s", n, server, ex2003OrgPath)
}

// Ex2003Host is a simulated Exchange 2003 server.
type Ex2003Host struct {
	mu            sync.Mutex
	info          remediate.HostInfo
	mb            iisMetabase
	ad            []remediate.Ex2003ADServer
	adUnavailable bool
	syncDelay     time.Duration
	neverSync     bool
	pending       bool
	pendingAt     time.Time
	now           func() time.Time
	calls         []ScriptCall
	syncs         int
}

// NewExchange2003 returns a simulated Exchange 2003 SP2 server on Windows
// Server 2003 (32-bit, PowerShell 2.0) in the given scenario.
func NewExchange2003(s Ex2003Scenario) *Ex2003Host {
	h := &Ex2003Host{
		info: remediate.HostInfo{
			ComputerName: ex2003Computer, Domain: labDNSDomain,
			OSCaption: "Microsoft(R) Windows(R) Server 2003, Standard Edition", OSVersion: "5.2.3790",
			PSVersion: "2.0", Is64BitProcess: false,
			ExchangeVersion: "2003", ExchangeBuild: "6.5.7638",
			// HKLM\SOFTWARE\Microsoft\Exchange\Setup\ExchangeServerAdmin:
			// the install path, which Exchange 4.0-5.5 do not write.
			ExchangeServerAdmin: `C:\Program Files\Exchsrvr`,
			Services: []remediate.ServiceInfo{
				{Name: "SMTPSVC", Present: true, State: "Running", StartMode: "Auto"},
				{Name: "MSExchangeTransport"}, {Name: "MSExchangeFrontEndTransport"},
				{Name: "MSExchangeSA", Present: true, State: "Running", StartMode: "Auto"},
			},
			Platform: remediate.PlatformExchange2003,
		},
		mb:        iisMetabase{webWMI: true}, // IIS 6 WMI is native on Windows 2003 [S16]
		syncDelay: DefaultEx2003SyncDelay,
		now:       time.Now,
	}
	st := iisBaseState(ex2003Computer)
	st.Domains = nil // Exchange keeps its domains in AD (recipient policies, not metabase domains)
	open := remediate.RelayListBlob{Bytes: []byte{}}
	unset := remediate.RelayListBlob{Null: true}
	adOpen, mbOpen := false, false
	switch s {
	case Ex2003Open, Ex2003ADUnavailable, Ex2003NoADObject:
		adOpen, mbOpen = true, true
		h.adUnavailable = s == Ex2003ADUnavailable
	case Ex2003Default:
	case Ex2003MetabaseOpenADClosed:
		mbOpen = true
	case Ex2003ADOpenMetabaseClosed:
		adOpen = true
	default:
		panic(fmt.Sprintf("lab: unknown Exchange 2003 scenario %d", s))
	}
	pick := func(o bool) remediate.RelayListBlob {
		if o {
			return open
		}
		return unset
	}
	st.Servers[0].RelayIpList = pick(mbOpen)
	st.Servers[0].AuthFlags = "7"
	st.Servers[0].AuthBasic, st.Servers[0].AuthNTLM = true, true
	h.mb.st = st
	h.ad = []remediate.Ex2003ADServer{
		{DN: Ex2003DN(ex2003Computer, 1), RelayIpList: pick(adOpen), RelayForAuth: "True", AuthFlags: "7"},
		// Another server of the organisation: never touched.
		{DN: Ex2003DN("MAIL04", 1), RelayIpList: open, RelayForAuth: "True", AuthFlags: "7"},
	}
	if s == Ex2003NoADObject {
		h.ad[0].DN = Ex2003DN("EVS01", 1)
	}
	return h
}

// SetSyncDelay sets how long DS2MB waits after an AD write.
func (h *Ex2003Host) SetSyncDelay(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.syncDelay = d
}

// SetNeverSync injects the "DS2MB never syncs" fault (System Attendant
// stopped).
func (h *Ex2003Host) SetNeverSync(never bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.neverSync = never
}

// SyncNow runs DS2MB at once (its 15-minute periodic run), unless the
// never-sync fault is set.
func (h *Ex2003Host) SyncNow() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.neverSync {
		h.sync()
	}
}

// Syncs counts DS2MB runs that copied AD into the metabase.
func (h *Ex2003Host) Syncs() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.syncs
}

// ADState returns a copy of the AD objects.
func (h *Ex2003Host) ADState() []remediate.Ex2003ADServer {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settle()
	out := append([]remediate.Ex2003ADServer(nil), h.ad...)
	for i := range out {
		out[i].RelayIpList = cloneBlob(out[i].RelayIpList)
	}
	return out
}

// MetabaseState returns a copy of the metabase.
func (h *Ex2003Host) MetabaseState() remediate.IISState {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settle()
	return cloneIIS(h.mb.st)
}

// Calls returns the script runs received so far.
func (h *Ex2003Host) Calls() []ScriptCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ScriptCall(nil), h.calls...)
}

// settle runs a pending DS2MB sync whose time has come.
func (h *Ex2003Host) settle() {
	if h.pending && !h.neverSync && !h.now().Before(h.pendingAt) {
		h.sync()
	}
}

// sync copies this server's AD objects into the metabase (one way [S20]).
func (h *Ex2003Host) sync() {
	h.pending = false
	h.syncs++
	for _, a := range h.ad {
		if !a.OnServer(h.info.ComputerName) {
			continue
		}
		if i := h.mb.serverIndex(a.MetabaseName()); i >= 0 {
			h.mb.st.Servers[i].RelayIpList = cloneBlob(a.RelayIpList)
			h.mb.st.Servers[i].RelayForAuth = remediate.Ex2003MetabaseRelayForAuth(a.RelayForAuthOn())
		}
	}
}

// HostInfo implements Host.
func (h *Ex2003Host) HostInfo() remediate.HostInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return cloneInfo(h.info)
}

// LocalDomains implements Host.
func (h *Ex2003Host) LocalDomains() []string { return []string{labDNSDomain} }

// RelayAllowed implements Host: SMTPSVC decides from the metabase, as on
// IIS (Exchange 2003 relay restrictions are the IIS ones).
func (h *Ex2003Host) RelayAllowed(client netip.Addr, authenticated bool, rcptDomain string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settle()
	return iisRelayAllowed(h.mb.st, "SmtpSvc/1", client, authenticated, rcptDomain)
}

// GuestLogon implements GuestLogoner (Exchange 2003 runs on IIS SMTP).
func (h *Ex2003Host) GuestLogon() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return iisGuestLogon(h.mb.st, "SmtpSvc/1")
}

// adUnavailable is what the AD scripts print when LDAP fails.
func adUnavailableRecord() []psframe.Record {
	return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).
		Set("message", "An operations error occurred.\r\n").
		Set("type", "System.Management.Automation.MethodInvocationException").
		Set("inner", "System.Runtime.InteropServices.COMException").Set("hresult", hresultOperationsError).
		Set("kind", "ad-unavailable")}
}

// Handle implements Host.
func (h *Ex2003Host) Handle(script string, params map[string]string) ([]psframe.Record, int, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	recordCall(&h.calls, script, params)
	h.settle()
	switch script {
	case remediate.DetectScript:
		if err := checkParams(params); err != nil {
			return errorRecord(err.Error(), "bad-parameter"), 1, ""
		}
		return remediate.EncodeHostInfo(h.info), 0, ""
	case remediate.ScriptEx2003ReadAD:
		if err := checkParams(params, "relayiplistattr"); err != nil {
			return errorRecord(err.Error(), "bad-parameter"), 1, ""
		}
		if !reLDAPAttr.MatchString(params["relayiplistattr"]) {
			return errorRecord("parameter relayiplistattr is not an LDAP attribute name", "bad-parameter"), 2, ""
		}
		if h.adUnavailable {
			return adUnavailableRecord(), 5, ""
		}
		var recs []psframe.Record
		for _, a := range h.ad {
			if !strings.EqualFold(params["relayiplistattr"], remediate.Ex2003RelayIpListAttr) {
				a.RelayIpList = remediate.RelayListBlob{Null: true} // no such attribute: nothing loaded
			}
			recs = append(recs, remediate.Ex2003ADRecord(a))
		}
		return recs, 0, ""
	case remediate.ScriptEx2003WriteAD:
		return h.writeAD(params)
	}
	if recs, code, ok := h.mb.handle(script, params); ok {
		// Metabase writes are possible on Exchange 2003 but do not reach
		// AD: the next DS2MB run undoes them.
		return recs, code, ""
	}
	return errorRecord("lab: the Exchange 2003 host does not run script "+script, "unknown-script"), 1, ""
}

func (h *Ex2003Host) writeAD(params map[string]string) ([]psframe.Record, int, string) {
	if err := checkParams(params, "dn", "relayiplistattr", "relayiplist", "relayforauth"); err != nil {
		return errorRecord(err.Error(), "bad-parameter"), 1, ""
	}
	dn, attr, ril, rfa := params["dn"], params["relayiplistattr"], params["relayiplist"], params["relayforauth"]
	switch {
	case !reLDAPAttr.MatchString(attr):
		return errorRecord("parameter relayiplistattr is not an LDAP attribute name", "bad-parameter"), 2, ""
	case ril != "NULL" && ril != "EMPTY" && !reHexBlob.MatchString(ril):
		return errorRecord("parameter relayiplist is not NULL, EMPTY or hex", "bad-parameter"), 2, ""
	case rfa != "TRUE" && rfa != "FALSE":
		return errorRecord("parameter relayforauth is not TRUE or FALSE", "bad-parameter"), 2, ""
	case !strings.HasPrefix(strings.ToUpper(dn), "CN=") || strings.Contains(dn, "/"):
		return errorRecord("parameter dn is not a distinguished name", "bad-parameter"), 2, ""
	}
	if h.adUnavailable {
		return adUnavailableRecord(), 5, ""
	}
	idx := -1
	for i := range h.ad {
		if strings.EqualFold(h.ad[i].DN, dn) {
			idx = i
		}
	}
	if idx < 0 {
		return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).Set("message", "There is no such object on the server.\r\n").
			Set("type", "System.Management.Automation.MethodInvocationException").
			Set("inner", "System.DirectoryServices.DirectoryServicesCOMException").Set("hresult", remediate.HResultNoSuchObject).
			Set("kind", "not-found")}, 4, ""
	}
	if !strings.EqualFold(attr, remediate.Ex2003RelayIpListAttr) {
		// CommitChanges on an attribute the class does not have; the
		// prologue's trap prints it.
		return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).Set("message", "The specified directory service attribute or value does not exist.\r\n").
			Set("type", "System.Management.Automation.MethodInvocationException").
			Set("inner", "System.Runtime.InteropServices.COMException").Set("hresult", hresultNoAttributeOrValue)}, 1, ""
	}
	b, err := remediate.ParseRelayListBlob(strings.ToUpper(ril))
	if err != nil {
		return errorRecord(err.Error(), "bad-parameter"), 2, ""
	}
	h.ad[idx].RelayIpList = b
	h.ad[idx].RelayForAuth = map[string]string{"TRUE": "True", "FALSE": "False"}[rfa]
	// DS2MB is notified of the change [S20].
	h.pending, h.pendingAt = true, h.now().Add(h.syncDelay)
	return []psframe.Record{remediate.Ex2003ADRecord(h.ad[idx])}, 0, ""
}
