package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// This file is the Exchange 2000/2003 driver (docs/windows-relay.md §2). The
// SMTP virtual servers of Exchange 2000/2003 are configured in Active
// Directory (objectClass protocolCfgSMTPServer); the Metabase Update
// service (DS2MB, in the System Attendant) copies them one way into the
// IIS metabase, where SMTPSVC reads them [S18, S20, S21]. So:
//
//   - Inspect reads both views: the metabase with iis-read (what is
//     effective now) and AD with ex2003-read-ad (what wins at the next
//     DS2MB sync), and reports when they disagree.
//   - One domain controller per run: the DSAccess configuration DC, which
//     DS2MB registers with and reads (Exchange_DSAccessDC Type 0; Metabase
//     Update Service, Exchange 2003),
//     unless the operator names one (--dc). ex2003-read-ad picks it and
//     reports it; every write of the run goes to it.
//   - Before reading, ex2003-read-ad checks that the relay-list attribute
//     exists in the schema (its name is UNVERIFIED): reading an attribute
//     the schema lacks silently returns nothing, which would look like an
//     unset, closed list.
//   - Apply writes AD (never the metabase alone, which DS2MB would undo),
//     then polls the metabase with iis-read until DS2MB has copied the
//     values. Lists are compared decoded, not byte for byte. A metabase
//     that has not caught up within the wait is "pending (DS2MB)"
//     (ErrPending): not rolled back, since a rollback would race the copy
//     DS2MB is about to make; relaylock inspect shows when it has caught up.
//   - Restore writes the saved AD values back and waits likewise.
//
// Records of ex2003-read-ad and ex2003-write-ad, decoded here (the lab
// builds its own from the scripts):
//
//	dc     name source ds2mb           (read: the DC used; see dcSource*)
//	schema dn                          (read: the attributeSchema object)
//	advs   dn relayiplist relayforauth authflags smarthost
//	error  kind ad-unavailable | schema-missing | bad-parameter | not-found

// Script names.
const (
	// ScriptEx2003ReadAD searches AD. Params: relayiplistattr, dc (""
	// lets the script find the DC DS2MB reads).
	ScriptEx2003ReadAD = "ex2003-read-ad"
	// ScriptEx2003WriteAD writes one AD object. Params: dn,
	// relayiplistattr, relayiplist ("NULL", "EMPTY" or hex), relayforauth
	// ("TRUE" or "FALSE"), dc (the DC to write to; "" binds serverless).
	ScriptEx2003WriteAD = "ex2003-write-ad"
)

// Ex2003RelayIpListAttr is the LDAP attribute of a protocolCfgSMTPServer
// object holding the relay list. UNVERIFIED: the name is not found in any
// public source (docs/windows-relay.md §2.1); it is expected to hold the same
// IPSECLIST blob DS2MB copies into RelayIpList. Scripts receive it as a
// parameter, so this constant is the single point of correction.
const Ex2003RelayIpListAttr = "msExchSmtpRelayIpList"

// ex2003MetabaseRelayForAuth is the metabase RelayForAuth value DS2MB
// writes for the AD boolean msExchSmtpRelayForAuth. UNVERIFIED mapping
// (TRUE -> relayForAuthEnabled, FALSE -> 0).
func ex2003MetabaseRelayForAuth(ad bool) int64 {
	if ad {
		return relayForAuthEnabled
	}
	return RelayForAuthDisabled
}

// Defaults of the DS2MB wait: DS2MB is notified within 15 s of an AD
// change [S20] and also runs every 15 minutes [S21, S22].
const (
	DefaultDS2MBTimeout = 60 * time.Second
	DefaultDS2MBPoll    = 2 * time.Second
	// firstDS2MBPoll is the first pause; pauses double up to PollInterval.
	firstDS2MBPoll = 250 * time.Millisecond
)

// ErrSyncTimeout: the metabase did not take the values written to Active
// Directory within the timeout (DS2MB slow, System Attendant down, AD
// replication to the DC DS2MB reads from, ...). Apply and Restore report
// it wrapped in ErrPending.
var ErrSyncTimeout = errors.New("the metabase did not sync from Active Directory (DS2MB)")

// ErrPending: a change was written to Active Directory (and read back
// there), but DS2MB had not copied it into the metabase within the wait.
// DS2MB copies it within about 15 s of the change notification, and every
// 15 minutes otherwise (Metabase Update Service, Exchange 2003), so the change is in flight, not failed:
// callers must not roll back (the rollback would race that copy) and
// record the change as "pending". relaylock inspect shows when the
// metabase has caught up (the DS2MB row of each Active Directory object).
var ErrPending = errors.New("pending (DS2MB)")

// ErrSchemaAttribute: the schema has no attribute with the lDAPDisplayName
// relaylock uses for the Exchange 2000/2003 relay list
// (Ex2003RelayIpListAttr, a name no public source confirms): relaylock
// neither reads nor writes it.
var ErrSchemaAttribute = errors.New("relay-list attribute not in the Active Directory schema")

// Sources of the domain controller an Exchange 2000/2003 run uses
// (ex2003DC.Source).
const (
	// dcSourceOperator: named with --dc.
	dcSourceOperator = "operator"
	// dcSourceDSAccess: the DSAccess configuration DC
	// (Exchange_DSAccessDC Type 0), which DS2MB reads (Metabase Update
	// Service, Exchange 2003).
	dcSourceDSAccess = "dsaccess"
	// dcSourceLocator: DSAccess could not be asked; the DC a serverless
	// bind reached (RootDSE dnsHostName). DS2MB may read another one.
	dcSourceLocator = "locator"
)

// ex2003DC is the domain controller of one Exchange 2000/2003 run.
type ex2003DC struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	// DS2MB is the DSAccess configuration DC, which DS2MB reads; "" when
	// it could not be learnt.
	DS2MB string `json:"ds2mb,omitempty"`
}

// ReadByDS2MB reports whether writes to this DC are seen by DS2MB without
// waiting for AD replication.
func (d ex2003DC) ReadByDS2MB() bool {
	return d.DS2MB != "" && sameHost(d.Name, d.DS2MB)
}

// Describe says which DC it is and why it was chosen.
func (d ex2003DC) Describe() string {
	switch {
	case d.Source == dcSourceDSAccess:
		return d.Name + " (the DSAccess configuration domain controller, which DS2MB reads)"
	case d.Source == dcSourceOperator && d.ReadByDS2MB():
		return d.Name + " (named by the operator; the DSAccess configuration domain controller, which DS2MB reads)"
	case d.Source == dcSourceOperator && d.DS2MB != "":
		return d.Name + " (named by the operator; DS2MB reads " + d.DS2MB + ", so a change reaches the metabase only after AD replication)"
	case d.Source == dcSourceOperator:
		return d.Name + " (named by the operator; which DC DS2MB reads could not be learnt)"
	}
	return d.Name + " (picked by the domain controller locator: DSAccess could not be asked which DC DS2MB reads; name a domain controller to choose)"
}

// sameHost compares DC names case-insensitively, a short name matching the
// first label of a DNS name.
func sameHost(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	sa, _, da := strings.Cut(a, ".")
	sb, _, db := strings.Cut(b, ".")
	return (!da || !db) && strings.EqualFold(sa, sb)
}

const (
	recADDC     = "dc"
	recADSchema = "schema"
)

func decodeDC(r psframe.Record) (ex2003DC, error) {
	d := ex2003DC{Name: r.Str("name"), Source: r.Str("source"), DS2MB: r.Str("ds2mb")}
	switch {
	case d.Name == "":
		return d, errors.New("record dc: empty name")
	case d.Source != dcSourceOperator && d.Source != dcSourceDSAccess && d.Source != dcSourceLocator:
		return d, fmt.Errorf("record dc: unknown source %q", truncateText(d.Source, 20))
	}
	return d, nil
}

// sameRelayList compares two relay lists decoded: DS2MB copies the value,
// and relaylock does not depend on it keeping the exact bytes (entry
// order, for one). Undecodable values compare byte for byte.
func sameRelayList(a, b RelayListBlob) bool {
	la, errA := a.Decode()
	lb, errB := b.Decode()
	if errA != nil || errB != nil {
		return a.Equal(b)
	}
	return la.Equal(lb)
}

// ErrADUnavailable: Active Directory could not be read or written from
// the host (often the WinRM second hop: NTLM/Basic sessions reach the DC
// as ANONYMOUS LOGON, docs/windows-relay.md §0).
var ErrADUnavailable = errors.New("active directory unavailable")

const recADVS = "advs"

// Ex2003ADServer is one protocolCfgSMTPServer object.
type Ex2003ADServer struct {
	DN          string        `json:"dn"`
	RelayIpList RelayListBlob `json:"relay_ip_list"`
	// RelayForAuth is msExchSmtpRelayForAuth as read ("True", "False" or
	// "" when unset).
	RelayForAuth string `json:"relay_for_auth"`
	AuthFlags    string `json:"auth_flags,omitempty"`
	SmartHost    string `json:"smart_host,omitempty"`
}

// RelayForAuthOn interprets msExchSmtpRelayForAuth; unset is the default
// True [S23].
func (a Ex2003ADServer) RelayForAuthOn() bool {
	switch strings.ToLower(strings.TrimSpace(a.RelayForAuth)) {
	case "false", "0":
		return false
	}
	return true
}

// Instance is the virtual server number (the first RDN, CN=1 [S19]).
func (a Ex2003ADServer) Instance() string {
	first, _, _ := strings.Cut(a.DN, ",")
	if v, ok := strings.CutPrefix(strings.ToUpper(first), "CN="); ok {
		return first[len(first)-len(v):]
	}
	return ""
}

// MetabaseName is the metabase virtual server the object maps to.
func (a Ex2003ADServer) MetabaseName() string { return "SmtpSvc/" + a.Instance() }

// OnServer reports whether the object belongs to Exchange server name
// (…,CN=<name>,CN=Servers,… in its DN [S18]).
func (a Ex2003ADServer) OnServer(name string) bool {
	return strings.Contains(strings.ToLower(a.DN), ",cn="+strings.ToLower(name)+",cn=servers,")
}

func decodeADServer(r psframe.Record) (Ex2003ADServer, error) {
	a := Ex2003ADServer{DN: r.Str("dn"), RelayForAuth: r.Str("relayforauth"), AuthFlags: r.Str("authflags"), SmartHost: r.Str("smarthost")}
	if a.DN == "" {
		return a, errors.New("record advs: empty dn")
	}
	var err error
	a.RelayIpList, err = getBlob(r, "relayiplist")
	return a, err
}

// Ex2003State is the typed state of an Exchange 2003 inspection.
type Ex2003State struct {
	Metabase IISState         `json:"metabase"`
	AD       []Ex2003ADServer `json:"ad"`
	// DC is the domain controller AD was read from, which the plan's
	// writes go to.
	DC *ex2003DC `json:"dc,omitempty"`
	// RelayAttrSchema is the DN of the attributeSchema object of
	// Ex2003RelayIpListAttr, found before the read.
	RelayAttrSchema string `json:"relay_attr_schema,omitempty"`
	// ADError is why AD could not be read (then AD is empty and nothing
	// can be planned).
	ADError string `json:"ad_error,omitempty"`
}

// Exchange2003Driver is the Exchange 2000/2003 driver.
type Exchange2003Driver struct {
	// SyncTimeout bounds the wait for DS2MB after each AD write; zero
	// means DefaultDS2MBTimeout.
	SyncTimeout time.Duration
	// PollInterval is the pause between metabase reads; zero means
	// DefaultDS2MBPoll.
	PollInterval time.Duration
	// DC is the domain controller the operator named (--dc); "" lets
	// ex2003-read-ad use the one DS2MB reads.
	DC string
}

// WithDC implements DCDriver.
func (d *Exchange2003Driver) WithDC(dc string) Driver {
	d2 := *d
	d2.DC = dc
	return &d2
}

// Platform implements Driver.
func (*Exchange2003Driver) Platform() Platform { return PlatformExchange2003 }

// Inspect implements Driver.
func (d *Exchange2003Driver) Inspect(ctx context.Context, r Runner, host string, info HostInfo, prober []netip.Addr) (*Inspection, error) {
	insp := &Inspection{Host: host, Time: time.Now().UTC(), Platform: PlatformExchange2003, HostInfo: info}
	out, err := runScript(ctx, r, host, ScriptIISRead, nil, &insp.Runs)
	if err != nil {
		return insp, fmt.Errorf("read the metabase of Exchange 2003: %w", err)
	}
	var st Ex2003State
	if st.Metabase, err = DecodeIISState(out); err != nil {
		return insp, fmt.Errorf("read the metabase of Exchange 2003: %w", err)
	}
	adOut, adErr := runScript(ctx, r, host, ScriptEx2003ReadAD, map[string]string{"relayiplistattr": Ex2003RelayIpListAttr, "dc": d.DC}, &insp.Runs)
	if errors.Is(adErr, ErrSchemaAttribute) {
		return insp, fmt.Errorf("read Exchange 2003 SMTP virtual servers from AD: %w", adErr)
	}
	if adErr == nil {
		if rec, ok := adOut.First(recADDC); ok {
			dc, err := decodeDC(rec)
			if err != nil {
				return insp, fmt.Errorf("read Exchange 2003 SMTP virtual servers from AD: %w", err)
			}
			st.DC = &dc
		}
		if rec, ok := adOut.First(recADSchema); ok {
			st.RelayAttrSchema = rec.Str("dn")
		}
		if st.DC == nil || st.RelayAttrSchema == "" {
			return insp, fmt.Errorf("read Exchange 2003 SMTP virtual servers from AD on %s: the script reported no domain controller or schema check", host)
		}
		for _, rec := range adOut.Of(recADVS) {
			a, err := decodeADServer(rec)
			if err != nil {
				return insp, fmt.Errorf("read Exchange 2003 SMTP virtual servers from AD: %w", err)
			}
			if info.ComputerName == "" || a.OnServer(info.ComputerName) {
				st.AD = append(st.AD, a)
			}
		}
	} else if errors.Is(adErr, ErrADUnavailable) {
		st.ADError = adErr.Error()
	} else {
		return insp, fmt.Errorf("read Exchange 2003 SMTP virtual servers from AD: %w", adErr)
	}
	if insp.State, err = json.Marshal(st); err != nil {
		return insp, err
	}
	insp.Settings = ex2003Settings(st)
	insp.Findings = ex2003Findings(st, prober)
	return insp, nil
}

func adRFAText(on bool) string {
	if on {
		return "True"
	}
	return "False"
}

// Setting names specific to Exchange 2003.
const (
	// SettingDS2MB says, per Active Directory object, whether the metabase
	// has caught up with it: "in sync" or "pending: ...".
	SettingDS2MB = "DS2MB"
	// SettingDomainController is the DC a run reads and writes.
	SettingDomainController = "DomainController"
)

// DS2MBInSync is the SettingDS2MB value of an object the metabase matches.
const DS2MBInSync = "in sync"

// ds2mbStatus is the SettingDS2MB value of a: "in sync" when the metabase
// of its virtual server has the same (decoded) values.
func (st Ex2003State) ds2mbStatus(a Ex2003ADServer, vs IISVirtualServer) string {
	if sameRelayList(a.RelayIpList, vs.RelayIpList) && a.RelayForAuthOn() == (vs.RelayForAuth != 0) {
		return DS2MBInSync
	}
	return "pending: the metabase of " + vs.Name + " differs (DS2MB copies Active Directory within about 15 s of a change notification and every 15 minutes; or the metabase was edited by hand)"
}

func ex2003Settings(st Ex2003State) []Setting {
	rows := IISSettings(st.Metabase)
	if st.DC != nil {
		rows = append(rows, Setting{"Active Directory", SettingDomainController, st.DC.Describe()})
	}
	for _, a := range st.AD {
		rows = append(rows,
			Setting{a.DN, SettingRelayIpList, DescribeBlob(a.RelayIpList)},
			Setting{a.DN, SettingRelayIpListRaw, a.RelayIpList.String()},
			Setting{a.DN, SettingRelayForAuth, adRFAText(a.RelayForAuthOn())},
			Setting{a.DN, "AuthenticationFlags", a.AuthFlags},
			Setting{a.DN, "SmartHost", a.SmartHost},
		)
		if vs, ok := st.Metabase.Server(a.MetabaseName()); ok {
			rows = append(rows, Setting{a.DN, SettingDS2MB, st.ds2mbStatus(a, vs)})
		}
	}
	return rows
}

const ex2003FixText = "Run relaylock remediate: it writes \"Only the list below\" with the allowed clients " + FixTextLoopback + " to the virtual server's Active Directory object, waits for DS2MB to copy it into the metabase, and proves the result with a re-probe."

// Finding IDs specific to Exchange 2003.
const (
	FindingEx2003Disagree     = "EX2003-AD-METABASE-DISAGREE"
	FindingEx2003ADUnreadable = "EX2003-AD-UNREADABLE"
	FindingEx2003ADObjectGone = "EX2003-AD-OBJECT-MISSING"
)

func ex2003Findings(st Ex2003State, prober []netip.Addr) []Finding {
	fs := iisFindings("EX2003-", st.Metabase, prober, ex2003FixText)
	if st.ADError != "" {
		fs = append(fs, Finding{
			ID: FindingEx2003ADUnreadable, Title: "Active Directory view of the SMTP virtual servers could not be read", Severity: SeverityMedium,
			Object: "Active Directory", Setting: Ex2003RelayIpListAttr,
			Detail:      "Exchange 2003 keeps SMTP virtual server settings in Active Directory and copies them into the metabase (DS2MB); the metabase shows what is effective now, but AD wins at the next sync. Reading AD failed: " + st.ADError,
			Remediation: "Run relaylock with Kerberos delegation or CredSSP so the session can reach a domain controller, or check the relay settings in Exchange System Manager.",
		})
		return fs
	}
	for _, vs := range st.Metabase.Servers {
		if _, ok := st.adFor(vs.Name); !ok {
			fs = append(fs, Finding{
				ID: FindingEx2003ADObjectGone, Title: "No Active Directory object found for virtual server " + vs.Name, Severity: SeverityMedium,
				Object: vs.Name, Setting: "distinguishedName",
				Detail: "No protocolCfgSMTPServer object under this server's name (CN=<server>,CN=Servers) matches " + vs.Name + ". relaylock cannot change it: a metabase-only change would be undone by DS2MB. " +
					"On an Exchange 2003 cluster the object sits under the Exchange Virtual Server's name (UNVERIFIED).",
				Remediation: "Change the relay restrictions in Exchange System Manager (virtual server properties, Access tab, Relay).",
			})
		}
	}
	for _, a := range st.AD {
		vs, ok := st.Metabase.Server(a.MetabaseName())
		if !ok {
			continue
		}
		sameList := sameRelayList(a.RelayIpList, vs.RelayIpList)
		sameRFA := a.RelayForAuthOn() == (vs.RelayForAuth != 0)
		if sameList && sameRFA {
			continue
		}
		adL, errA := a.RelayIpList.Decode()
		mbL, errM := vs.RelayIpList.Decode()
		sev := SeverityMedium
		if errA == nil && errM == nil && adL.IsOpenToAll() && !mbL.IsOpenToAll() {
			sev = SeverityHigh // the next DS2MB sync opens the relay
		}
		fs = append(fs, Finding{
			ID: FindingEx2003Disagree, Title: "Active Directory and metabase disagree on the relay settings", Severity: sev,
			Object: a.DN, Setting: SettingRelayIpList,
			Value: fmt.Sprintf("AD: %s, RelayForAuth %s; metabase %s: %s, RelayForAuth %d", DescribeBlob(a.RelayIpList), adRFAText(a.RelayForAuthOn()), vs.Name, DescribeBlob(vs.RelayIpList), vs.RelayForAuth),
			Detail: "The metabase value of " + vs.Name + " is what SMTPSVC enforces now; the Active Directory value wins at the next DS2MB sync (within 15 s of an AD change, and every 15 minutes). " +
				"Right after relaylock remediate or rollback reported \"pending (DS2MB)\", this is that change on its way: run relaylock inspect again later; the DS2MB row says \"in sync\" once it has arrived. " +
				"Otherwise a metabase edit was made outside Exchange System Manager, and that sync undoes it.",
			Remediation: ex2003FixText,
		})
		if !sameList {
			for _, f := range relayListFindings("EX2003-AD-", a.DN, a.RelayIpList, "", prober, ex2003FixText) {
				if f.Severity != SeverityInfo {
					f.Explains = false // not effective until DS2MB copies it
					f.Detail += " (Active Directory value, effective after the next DS2MB sync.)"
					fs = append(fs, f)
				}
			}
		}
	}
	return fs
}

// adFor returns the AD object of metabase virtual server name.
func (st Ex2003State) adFor(name string) (Ex2003ADServer, bool) {
	for _, a := range st.AD {
		if strings.EqualFold(a.MetabaseName(), name) {
			return a, true
		}
	}
	return Ex2003ADServer{}, false
}

// Ex2003Desired is the typed plan of the Exchange 2003 driver: one AD
// write per virtual server, each followed by a wait for DS2MB.
type Ex2003Desired struct {
	Writes []Ex2003ADWrite `json:"writes,omitempty"`
	// SyncTimeout is Request.SyncTimeout: how long to wait for DS2MB
	// (zero: the driver's default).
	SyncTimeout time.Duration `json:"sync_timeout,omitempty"`
	// DC is the domain controller the writes go to (the inspection's).
	DC string `json:"dc,omitempty"`
}

// withTimeout returns the driver with the plan's DS2MB timeout, if any.
func (d *Exchange2003Driver) withTimeout(des Ex2003Desired) *Exchange2003Driver {
	if des.SyncTimeout <= 0 {
		return d
	}
	d2 := *d
	d2.SyncTimeout = des.SyncTimeout
	return &d2
}

// Ex2003ADWrite is one ex2003-write-ad run and the metabase values to wait
// for.
type Ex2003ADWrite struct {
	DN           string        `json:"dn"`
	Server       string        `json:"server"` // metabase name, SmtpSvc/1
	RelayIpList  RelayListBlob `json:"relay_ip_list"`
	RelayForAuth bool          `json:"relay_for_auth"`
}

func ex2003State(insp *Inspection) (Ex2003State, error) {
	var st Ex2003State
	if insp == nil {
		return st, errors.New("no inspection")
	}
	if err := json.Unmarshal(insp.State, &st); err != nil {
		return st, fmt.Errorf("inspection state: %w", err)
	}
	return st, nil
}
