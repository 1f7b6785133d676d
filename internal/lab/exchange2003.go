package lab

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// This file simulates an Exchange 2003 server (docs/windows-relay.md §2): the
// SMTP virtual servers' Active Directory objects on two domain
// controllers, the IIS metabase that SMTPSVC enforces, and DS2MB.
//
//   - DC01 is the DSAccess configuration domain controller: DS2MB
//     registers with it and is notified of changes there, and copies AD
//     into the metabase a configurable delay after a change reaches DC01
//     (never, with the "never sync" fault), as Microsoft's "Metabase Update
//     Service" page (Exchange 2003) describes.
//   - DC02 is another DC of the domain. A serverless bind
//     (LDAP://RootDSE, LDAP://<dn>) reaches DC02: the locator's choice is
//     not the DC DS2MB reads. A write to one DC reaches the other only
//     after the replication delay.
//   - Exchange_DSAccessDC (root\MicrosoftExchangeV2) names DC01 as the
//     configuration DC (Type 0), unless that WMI class is made unavailable.
//   - The schema may lack the relay-list attribute (its name is UNVERIFIED).
//
// Replication and DS2MB are evaluated lazily, in time order, whenever the
// host is used, so the simulation needs no goroutine. The lab prints its own
// records, built from the scripts (iis_records.go), not the driver's.

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

// Defaults of the simulation.
const (
	// DefaultEx2003SyncDelay is how long the simulated DS2MB waits after a
	// change reaches the configuration DC before it copies AD into the
	// metabase (it is notified within 15 s: Metabase Update Service).
	DefaultEx2003SyncDelay = time.Second
	// DefaultEx2003ReplicationDelay is how long a write to one domain
	// controller takes to reach the other (Windows 2000 waited 5 minutes
	// before notifying its intra-site replication partners).
	DefaultEx2003ReplicationDelay = 5 * time.Minute
)

// The domain controllers of the simulated domain.
const (
	// Ex2003ConfigDC is the DSAccess configuration domain controller, the
	// one DS2MB reads (Exchange_DSAccessDC Type 0).
	Ex2003ConfigDC = "DC01.corp.example"
	// Ex2003OtherDC is where a serverless bind lands.
	Ex2003OtherDC = "DC02.corp.example"
)

const ex2003SchemaNC = "CN=Schema,CN=Configuration,DC=corp,DC=example"

const (
	ex2003Computer = "MAIL03"
	ex2003OrgPath  = ",CN=Servers,CN=First Administrative Group,CN=Administrative Groups,CN=Corp,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=corp,DC=example"
)

var (
	reLDAPAttr = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,63}$`)
	reDCName   = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9.-]{0,254})?$`)
)

// Ex2003DN is the DN of virtual server instance n of the simulated
// server (or of another server in the organisation).
func Ex2003DN(server string, n int) string {
	return fmt.Sprintf("CN=%d,CN=SMTP,CN=Protocols,CN=%s%s", n, server, ex2003OrgPath)
}

// adObject is one AD object on one DC with its replication metadata: a
// replicated value wins when its version is higher, or equal with a later
// originating time (Active Directory's conflict resolution).
type adObject struct {
	remediate.Ex2003ADServer
	ver   int
	stamp time.Time
}

type ex2003DC struct {
	name string
	ad   []adObject
}

// ex2003Event is a DS2MB run or the arrival of a replicated object.
type ex2003Event struct {
	at   time.Time
	sync bool // a DS2MB run; else obj replicates to dcs[dc]
	dc   int
	obj  adObject
}

// Ex2003Host is a simulated Exchange 2003 server.
type Ex2003Host struct {
	mu   sync.Mutex
	info remediate.HostInfo
	mb   iisMetabase
	// dcs[0] is the configuration DC (DS2MB's); locator indexes the DC a
	// serverless bind reaches.
	dcs                 []ex2003DC
	locator             int
	adUnavailable       bool
	dsaccessUnavailable bool
	noSchemaAttr        bool
	syncDelay           time.Duration
	replDelay           time.Duration
	neverSync           bool
	reserialize         bool
	events              []ex2003Event
	now                 func() time.Time
	calls               []ScriptCall
	syncs               int
}

// NewExchange2003 returns a simulated Exchange 2003 SP2 server on Windows
// Server 2003 (32-bit, PowerShell 2.0) in the given scenario, in a domain
// with two domain controllers (Ex2003ConfigDC, Ex2003OtherDC).
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
		replDelay: DefaultEx2003ReplicationDelay,
		locator:   1,
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
	ad := []remediate.Ex2003ADServer{
		{DN: Ex2003DN(ex2003Computer, 1), RelayIpList: pick(adOpen), RelayForAuth: "True", AuthFlags: "7"},
		// Another server of the organisation: never touched.
		{DN: Ex2003DN("MAIL04", 1), RelayIpList: open, RelayForAuth: "True", AuthFlags: "7"},
	}
	if s == Ex2003NoADObject {
		ad[0].DN = Ex2003DN("EVS01", 1)
	}
	for _, name := range []string{Ex2003ConfigDC, Ex2003OtherDC} {
		dc := ex2003DC{name: name}
		for _, a := range ad {
			dc.ad = append(dc.ad, adObject{Ex2003ADServer: cloneAD(a), ver: 1})
		}
		h.dcs = append(h.dcs, dc)
	}
	return h
}

func cloneAD(a remediate.Ex2003ADServer) remediate.Ex2003ADServer {
	a.RelayIpList = cloneBlob(a.RelayIpList)
	return a
}

// SetSyncDelay sets how long DS2MB waits after a change reaches the
// configuration DC.
func (h *Ex2003Host) SetSyncDelay(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.syncDelay = d
}

// SetReplicationDelay sets how long a write to one DC takes to reach the
// other.
func (h *Ex2003Host) SetReplicationDelay(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.replDelay = d
}

// SetNeverSync injects the "DS2MB never syncs" fault (System Attendant
// stopped).
func (h *Ex2003Host) SetNeverSync(never bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.neverSync = never
}

// StopSystemAttendant stops MSExchangeSA, which runs DS2MB: detection
// shows it Stopped, and DS2MB does not run until StartSystemAttendant.
func (h *Ex2003Host) StopSystemAttendant() { h.setSystemAttendant("Stopped") }

// StartSystemAttendant starts MSExchangeSA again; DS2MB runs at once, as
// it does when the System Attendant starts.
func (h *Ex2003Host) StartSystemAttendant() {
	h.setSystemAttendant("Running")
	h.SyncNow()
}

func (h *Ex2003Host) setSystemAttendant(state string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.info.Services {
		if h.info.Services[i].Name == "MSExchangeSA" {
			h.info.Services[i].State = state
		}
	}
	h.neverSync = state != "Running"
}

// SetDS2MBReserializes makes DS2MB write relay lists into the metabase in
// an equivalent but different byte form (offsets without the
// self-relative bit, which MAKEOFFSET ignores): a copy that is the same
// list, not the same bytes.
func (h *Ex2003Host) SetDS2MBReserializes(v bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reserialize = v
}

// SetDSAccessUnavailable makes Exchange_DSAccessDC unavailable (the
// root\MicrosoftExchangeV2 WMI provider not answering), so a script
// cannot learn which DC DS2MB reads.
func (h *Ex2003Host) SetDSAccessUnavailable(v bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dsaccessUnavailable = v
}

// SetSchemaWithoutRelayAttr removes the relay-list attribute
// (ex2003RelayListAttr) from the simulated schema.
func (h *Ex2003Host) SetSchemaWithoutRelayAttr(v bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.noSchemaAttr = v
}

// SyncNow runs DS2MB at once (its 15-minute periodic run), unless the
// never-sync fault is set.
func (h *Ex2003Host) SyncNow() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settle()
	if !h.neverSync {
		h.sync()
	}
}

// ReplicateNow delivers every replication in flight at once (as
// "repadmin /syncall" would); DS2MB is notified as usual.
func (h *Ex2003Host) ReplicateNow() {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	for i := range h.events {
		if !h.events[i].sync && h.events[i].at.After(now) {
			h.events[i].at = now
		}
	}
	h.settle()
}

// Syncs counts DS2MB runs that copied AD into the metabase.
func (h *Ex2003Host) Syncs() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settle()
	return h.syncs
}

// ADState returns a copy of the AD objects on the configuration DC.
func (h *Ex2003Host) ADState() []remediate.Ex2003ADServer {
	return h.ADStateOn(Ex2003ConfigDC)
}

// ADStateOn returns a copy of the AD objects on one DC (nil for an
// unknown DC).
func (h *Ex2003Host) ADStateOn(dc string) []remediate.Ex2003ADServer {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settle()
	i := h.dcIndex(dc)
	if i < 0 {
		return nil
	}
	var out []remediate.Ex2003ADServer
	for _, o := range h.dcs[i].ad {
		out = append(out, cloneAD(o.Ex2003ADServer))
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

// dcIndex finds a DC by its DNS name or its first label.
func (h *Ex2003Host) dcIndex(name string) int {
	for i, dc := range h.dcs {
		short, _, _ := strings.Cut(dc.name, ".")
		if strings.EqualFold(name, dc.name) || strings.EqualFold(name, short) {
			return i
		}
	}
	return -1
}

// settle runs, in time order, every replication and DS2MB run whose time
// has come.
func (h *Ex2003Host) settle() {
	now := h.now()
	for {
		next := -1
		for i, e := range h.events {
			if !e.at.After(now) && (next < 0 || e.at.Before(h.events[next].at)) {
				next = i
			}
		}
		if next < 0 {
			return
		}
		e := h.events[next]
		h.events = append(h.events[:next], h.events[next+1:]...)
		if e.sync {
			if !h.neverSync {
				h.sync()
			}
			continue
		}
		h.store(e.dc, e.obj, e.at)
	}
}

// store applies a value to DC i at time at if it wins over the DC's own
// (higher version, or equal version and later originating time). A change
// on the configuration DC notifies DS2MB (Metabase Update Service).
func (h *Ex2003Host) store(i int, obj adObject, at time.Time) {
	for k, cur := range h.dcs[i].ad {
		if !strings.EqualFold(cur.DN, obj.DN) {
			continue
		}
		if obj.ver < cur.ver || (obj.ver == cur.ver && !obj.stamp.After(cur.stamp)) {
			return
		}
		obj.Ex2003ADServer = cloneAD(obj.Ex2003ADServer)
		h.dcs[i].ad[k] = obj
		if i == 0 {
			h.events = append(h.events, ex2003Event{at: at.Add(h.syncDelay), sync: true})
		}
		return
	}
}

// writeOn is an LDAP write to DC i now; it replicates to the other DCs.
func (h *Ex2003Host) writeOn(i, k int, a remediate.Ex2003ADServer) adObject {
	now := h.now()
	obj := adObject{Ex2003ADServer: cloneAD(a), ver: h.dcs[i].ad[k].ver + 1, stamp: now}
	h.store(i, obj, now)
	for j := range h.dcs {
		if j != i {
			h.events = append(h.events, ex2003Event{at: now.Add(h.replDelay), dc: j, obj: obj})
		}
	}
	return h.dcs[i].ad[k]
}

// sync copies this server's AD objects on the configuration DC into the
// metabase (one way: Metabase Update Service).
func (h *Ex2003Host) sync() {
	h.syncs++
	for _, a := range h.dcs[0].ad {
		if !a.OnServer(h.info.ComputerName) {
			continue
		}
		if i := h.mb.serverIndex(a.MetabaseName()); i >= 0 {
			b := cloneBlob(a.RelayIpList)
			if h.reserialize {
				b = withoutSelfRelativeBits(b)
			}
			h.mb.st.Servers[i].RelayIpList = b
			h.mb.st.Servers[i].RelayForAuth = ds2mbRelayForAuth(a.RelayForAuthOn())
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

// dcUnreachable is what the AD scripts print when the named DC does not
// answer (0x8007203A).
func dcUnreachable(dc string) []psframe.Record {
	return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).
		Set("message", "domain controller "+dc+": The server is not operational.\r\n").
		Set("type", "System.Runtime.InteropServices.COMException").Set("hresult", remediate.HResultServerDown).Set("kind", "ad-unavailable")}
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
		return h.readAD(params)
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

// readAD answers ex2003-read-ad: the DC it binds to (the operator's, else
// DSAccess's configuration DC, else the locator's), the schema check of
// the relay-list attribute, then the objects as that DC has them.
func (h *Ex2003Host) readAD(params map[string]string) ([]psframe.Record, int, string) {
	if err := checkParams(params, "relayiplistattr", "dc"); err != nil {
		return errorRecord(err.Error(), "bad-parameter"), 1, ""
	}
	attr, dc := params["relayiplistattr"], params["dc"]
	if !reLDAPAttr.MatchString(attr) {
		return errorRecord("parameter relayiplistattr is not an LDAP attribute name", "bad-parameter"), 2, ""
	}
	if !reDCName.MatchString(dc) {
		return errorRecord("parameter dc is not a host name", "bad-parameter"), 2, ""
	}
	if h.adUnavailable {
		return adUnavailableRecord(), 5, ""
	}
	ds2mb := h.dcs[0].name
	if h.dsaccessUnavailable {
		ds2mb = ""
	}
	idx, source := -1, dcSourceOperator
	switch {
	case dc != "":
		if idx = h.dcIndex(dc); idx < 0 {
			return dcUnreachable(dc), 5, ""
		}
	case ds2mb != "":
		idx, source = 0, dcSourceDSAccess
	default:
		idx, source = h.locator, dcSourceLocator
	}
	if dc == "" {
		dc = h.dcs[idx].name
	}
	recs := []psframe.Record{ex2003DCRec(dc, source, ds2mb)}
	if h.noSchemaAttr || !strings.EqualFold(attr, ex2003RelayListAttr) {
		recs = append(recs, *psframe.NewRecord(psframe.ErrorRecord).
			Set("message", "no attributeSchema with lDAPDisplayName "+attr+" in "+ex2003SchemaNC+" on "+dc).
			Set("kind", "schema-missing").Set("attribute", attr))
		return recs, 6, ""
	}
	recs = append(recs, *psframe.NewRecord("schema").Set("dn", "CN=ms-Exch-Smtp-Relay-Ip-List,"+ex2003SchemaNC))
	for _, a := range h.dcs[idx].ad {
		recs = append(recs, ex2003ADVSRec(a.Ex2003ADServer))
	}
	return recs, 0, ""
}

// writeAD answers ex2003-write-ad: the write goes to the named DC, or,
// with no DC, to the one a serverless bind reaches.
func (h *Ex2003Host) writeAD(params map[string]string) ([]psframe.Record, int, string) {
	if err := checkParams(params, "dn", "relayiplistattr", "relayiplist", "relayforauth", "dc"); err != nil {
		return errorRecord(err.Error(), "bad-parameter"), 1, ""
	}
	dn, attr, ril, rfa, dc := params["dn"], params["relayiplistattr"], params["relayiplist"], params["relayforauth"], params["dc"]
	switch {
	case !reLDAPAttr.MatchString(attr):
		return errorRecord("parameter relayiplistattr is not an LDAP attribute name", "bad-parameter"), 2, ""
	case ril != "NULL" && ril != "EMPTY" && !reHexBlob.MatchString(ril):
		return errorRecord("parameter relayiplist is not NULL, EMPTY or hex", "bad-parameter"), 2, ""
	case rfa != "TRUE" && rfa != "FALSE":
		return errorRecord("parameter relayforauth is not TRUE or FALSE", "bad-parameter"), 2, ""
	case !strings.HasPrefix(strings.ToUpper(dn), "CN=") || strings.Contains(dn, "/"):
		return errorRecord("parameter dn is not a distinguished name", "bad-parameter"), 2, ""
	case !reDCName.MatchString(dc):
		return errorRecord("parameter dc is not a host name", "bad-parameter"), 2, ""
	}
	if h.adUnavailable {
		return adUnavailableRecord(), 5, ""
	}
	on := h.locator
	if dc != "" {
		if on = h.dcIndex(dc); on < 0 {
			return dcUnreachable(dc), 5, ""
		}
	}
	idx := -1
	for i := range h.dcs[on].ad {
		if strings.EqualFold(h.dcs[on].ad[i].DN, dn) {
			idx = i
		}
	}
	if idx < 0 {
		return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).Set("message", "There is no such object on the server.\r\n").
			Set("type", "System.Management.Automation.MethodInvocationException").
			Set("inner", "System.DirectoryServices.DirectoryServicesCOMException").Set("hresult", hresultNoSuchObject).
			Set("kind", "not-found")}, 4, ""
	}
	if !strings.EqualFold(attr, ex2003RelayListAttr) || h.noSchemaAttr {
		// CommitChanges on an attribute the class does not have; the
		// prologue's trap prints it.
		return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).Set("message", "The specified directory service attribute or value does not exist.\r\n").
			Set("type", "System.Management.Automation.MethodInvocationException").
			Set("inner", "System.Runtime.InteropServices.COMException").Set("hresult", hresultNoAttributeOrValue)}, 1, ""
	}
	b, _ := blobParam(ril) // the pattern above admits only values it reads
	a := h.dcs[on].ad[idx].Ex2003ADServer
	a.RelayIpList = b
	a.RelayForAuth = map[string]string{"TRUE": "True", "FALSE": "False"}[rfa]
	got := h.writeOn(on, idx, a)
	return []psframe.Record{ex2003ADVSRec(got.Ex2003ADServer)}, 0, ""
}

// withoutSelfRelativeBits clears bit 31 of every offset of an IPSECLIST
// (the four header references and each entry's iFirstAddress). The result
// decodes to the same list.
func withoutSelfRelativeBits(b remediate.RelayListBlob) remediate.RelayListBlob {
	if _, err := decodeIPSecList(b.Bytes); b.Null || err != nil || len(b.Bytes) < 24 {
		return b
	}
	out := append([]byte(nil), b.Bytes...)
	clear := func(off uint32) {
		if int(off)+4 <= len(out) {
			binary.LittleEndian.PutUint32(out[off:], binary.LittleEndian.Uint32(out[off:])&0x7fffffff)
		}
	}
	for _, ref := range []uint32{0, 4} {
		hdr := binary.LittleEndian.Uint32(out[ref:]) & 0x7fffffff
		if int(hdr)+8 > len(out) {
			continue
		}
		n := binary.LittleEndian.Uint32(out[hdr:])
		for i := uint32(0); i < n && int(hdr+8+20*i+20) <= len(out); i++ {
			clear(hdr + 8 + 20*i + 16)
		}
	}
	for _, ref := range []uint32{0, 4, 8, 12} {
		clear(ref)
	}
	return remediate.RelayListBlob{Bytes: out}
}
