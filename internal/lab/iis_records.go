package lab

import (
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// The records the iis-* and ex2003-* scripts print, built by the lab from
// the scripts themselves (templates/powershell/iis-read.ps1, iis-write.ps1,
// iis-write-domain.ps1, lib/iis-adsi.ps1, ex2003-read-ad.ps1,
// ex2003-write-ad.ps1): field names and order as their RL-Rec calls write
// them, values as PowerShell stringifies them. The driver's decoders are
// not used here, so the lab checks them rather than agreeing with them.

// psBool is [string] of a .NET Boolean.
func psBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// setHex sets a byte[] field as the prologue's RL-Hex prints it: $null
// for an unset value, the empty string for a zero-length one, else upper-case hex
// without separators (BitConverter.ToString with the dashes removed).
func setHex(r *psframe.Record, name string, b remediate.RelayListBlob) {
	switch {
	case b.Null:
		r.SetNull(name)
	case len(b.Bytes) == 0:
		r.Set(name, "")
	default:
		r.Set(name, strings.ToUpper(hex.EncodeToString(b.Bytes)))
	}
}

// setOrNull sets a field that the script prints from a property that may
// be unset ($null).
func setOrNull(r *psframe.Record, name, v string) {
	if v == "" {
		r.SetNull(name)
	} else {
		r.Set(name, v)
	}
}

// blobParam reads the relayiplist parameter of iis-write and
// ex2003-write-ad: NULL, EMPTY or hex (already checked against the
// scripts' own pattern), which RL-Bytes turns into the byte[] written.
func blobParam(v string) (remediate.RelayListBlob, bool) {
	switch v {
	case "NULL":
		return remediate.RelayListBlob{Null: true}, true
	case "EMPTY":
		return remediate.RelayListBlob{Bytes: []byte{}}, true
	}
	b, err := hex.DecodeString(v)
	return remediate.RelayListBlob{Bytes: b}, err == nil && len(b) > 0
}

// iisServiceRec: iis-read's 'service' record (Win32_Service SMTPSVC).
func iisServiceRec(s remediate.ServiceInfo) psframe.Record {
	return *psframe.NewRecord("service").Set("name", s.Name).Set("present", psBool(s.Present)).
		Set("state", s.State).Set("startmode", s.StartMode)
}

// iisSvcRec: the 'svc' record of IIsSmtpServiceSetting.
func iisSvcRec(s remediate.IISRelaySettings) psframe.Record {
	r := psframe.NewRecord("svc").Set("name", s.Name)
	setHex(r, "relayiplist", s.RelayIpList)
	return *r.Set("relayforauth", strconv.FormatInt(s.RelayForAuth, 10))
}

// iisVSRec: the 'vs' record of one IIsSmtpServerSetting.
func iisVSRec(vs remediate.IISVirtualServer) psframe.Record {
	r := psframe.NewRecord("vs").Set("name", vs.Name).Set("comment", vs.Comment)
	setHex(r, "relayiplist", vs.RelayIpList)
	r.Set("relayforauth", strconv.FormatInt(vs.RelayForAuth, 10))
	setOrNull(r, "authflags", vs.AuthFlags)
	return *r.Set("authanonymous", psBool(vs.AuthAnonymous)).Set("authbasic", psBool(vs.AuthBasic)).
		Set("authntlm", psBool(vs.AuthNTLM)).Set("smarthost", vs.SmartHost).
		Set("smarthosttype", strconv.FormatInt(vs.SmartHostType, 10))
}

// iisDomainRec: the 'domain' record of one IIsSmtpDomainSetting.
func iisDomainRec(d remediate.IISDomain) psframe.Record {
	r := psframe.NewRecord("domain").Set("name", d.Name).Set("routeaction", strconv.FormatInt(d.RouteAction, 10)).
		Set("relayforauth", strconv.FormatInt(d.RelayForAuth, 10))
	setHex(r, "relayiplist", d.RelayIpList)
	return *r
}

// iisADSIRec: lib/iis-adsi.ps1's 'adsi' record: the error message when
// ADSI fails, else own, present and, for a value, GrantByDefault and the
// IPGrant / IPDeny strings joined by newlines.
func iisADSIRec(v remediate.IISADSIView) psframe.Record {
	r := psframe.NewRecord("adsi").Set("name", v.Name)
	if v.Error != "" {
		return *r.Set("error", v.Error)
	}
	if v.Own == nil {
		r.SetNull("own")
	} else {
		r.Set("own", psBool(*v.Own))
	}
	r.Set("present", psBool(v.Present))
	if v.Present {
		r.Set("grantbydefault", psBool(v.GrantByDefault)).SetList("ipgrant", v.IPGrant).SetList("ipdeny", v.IPDeny)
	}
	return *r
}

// iisReadRecs is iis-read's output for st: service, guest, svc, every vs,
// every domain, then the adsi records.
func iisReadRecs(st remediate.IISState) []psframe.Record {
	recs := []psframe.Record{iisServiceRec(st.Service)}
	if st.Guest != nil {
		recs = append(recs, *psframe.NewRecord("guest").Set("name", st.Guest.Name).Set("enabled", psBool(st.Guest.Enabled)))
	}
	if st.ServiceLevel != nil {
		recs = append(recs, iisSvcRec(*st.ServiceLevel))
	}
	for _, vs := range st.Servers {
		recs = append(recs, iisVSRec(vs))
	}
	for _, d := range st.Domains {
		recs = append(recs, iisDomainRec(d))
	}
	for _, v := range st.ADSI {
		recs = append(recs, iisADSIRec(v))
	}
	return recs
}

// adsiViewOf is what ADSI's IIsIPSecurity object shows for a RelayIpList
// value, read with the lab's own IPSECLIST decoder: no value when unset,
// GrantByDefault and "IP, MASK" strings otherwise. A value the lab cannot
// read fails as ADSI's E_FAIL ("Unspecified error").
func adsiViewOf(name string, b remediate.RelayListBlob) remediate.IISADSIView {
	v := remediate.IISADSIView{Name: name}
	if b.Null {
		return v
	}
	l, err := decodeIPSecList(b.Bytes)
	if err != nil {
		v.Error = "Unspecified error"
		return v
	}
	v.Present, v.GrantByDefault = true, l.grantByDefault
	for _, e := range l.grant {
		v.IPGrant = append(v.IPGrant, e.adsi())
	}
	for _, e := range l.deny {
		v.IPDeny = append(v.IPDeny, e.adsi())
	}
	return v
}

// ex2003DCRec: ex2003-read-ad's 'dc' record (ds2mb $null when DSAccess
// names no configuration DC).
func ex2003DCRec(name, source, ds2mb string) psframe.Record {
	r := psframe.NewRecord("dc").Set("name", name).Set("source", source)
	setOrNull(r, "ds2mb", ds2mb)
	return *r
}

// ex2003ADVSRec: the 'advs' record both AD scripts print for one
// protocolCfgSMTPServer object; unset attributes print $null.
func ex2003ADVSRec(a remediate.Ex2003ADServer) psframe.Record {
	r := psframe.NewRecord("advs").Set("dn", a.DN)
	setHex(r, "relayiplist", a.RelayIpList)
	setOrNull(r, "relayforauth", a.RelayForAuth)
	setOrNull(r, "authflags", a.AuthFlags)
	setOrNull(r, "smarthost", a.SmartHost)
	return *r
}

// The dc record's source values, as ex2003-read-ad's header lists them.
const (
	dcSourceOperator = "operator" // the DC the operator named (dc parameter)
	dcSourceDSAccess = "dsaccess" // DSAccess's configuration DC, which DS2MB reads
	dcSourceLocator  = "locator"  // the DC a serverless bind reached
)

// ds2mbRelayForAuth is the metabase RelayForAuth the lab's DS2MB writes for
// the AD boolean msExchSmtpRelayForAuth: -1 for TRUE, the value the
// Windows Server 2003 metabase reference gives for "enabled", 0 for FALSE.
// How real DS2MB maps it is not documented (docs/windows-relay.md §2.1).
func ds2mbRelayForAuth(ad bool) int64 {
	if ad {
		return -1
	}
	return 0
}

// Metabase values the lab's IIS and DS2MB use.
const (
	// routeActionRelay is the RouteAction bit of IIsSmtpDomainSetting for
	// "Allow incoming mail to be relayed to this domain" (SMTP_DOMAIN_RELAY,
	// 0x1000; docs/windows-relay.md §1.3).
	routeActionRelay = 0x1000
	// relayForAuthOn is the RelayForAuth the lab's own scenarios set: -1,
	// "enabled" in the Windows Server 2003 metabase reference. IIS and the
	// lab treat any non-zero value as enabled.
	relayForAuthOn = -1
)

// iisServer finds a virtual server by its WMI Name (PowerShell -eq: case
// does not matter).
func iisServer(st remediate.IISState, name string) (remediate.IISVirtualServer, bool) {
	for _, vs := range st.Servers {
		if strings.EqualFold(vs.Name, name) {
			return vs, true
		}
	}
	return remediate.IISVirtualServer{}, false
}

// iisDomainParts splits a domain object's Name, "SmtpSvc/1/Domain/x",
// into its virtual server and its mail domain.
func iisDomainParts(name string) (server, domain string) {
	if s, d, ok := strings.Cut(name, "/Domain/"); ok {
		return s, d
	}
	return "", name
}

// remoteDomainMatches: a remote domain "*" takes every recipient domain,
// "*.example.com" every domain under example.com, any other name itself.
func remoteDomainMatches(pattern, domain string) bool {
	p := strings.ToLower(strings.TrimSuffix(pattern, "."))
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if p == "*" {
		return true
	}
	if rest, ok := strings.CutPrefix(p, "*"); ok && strings.HasPrefix(rest, ".") {
		return strings.HasSuffix(d, rest)
	}
	return p == d
}

// ex2003RelayListAttr is the relay-list attribute of protocolCfgSMTPServer
// in the lab's simulated schema. No public source names it
// (docs/windows-relay.md §2.1); the lab assumes the name relaylock asks for.
const ex2003RelayListAttr = "msExchSmtpRelayIpList"
