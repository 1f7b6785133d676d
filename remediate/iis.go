package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// This file is the IIS 6 SMTP driver (docs/windows-relay.md §1). The settings
// live in the IIS metabase and are read and written through WMI
// (root\MicrosoftIISv2), which needs the "IIS 6 WMI Compatibility" feature
// (Web-WMI).
//
// Contract between scripts, driver and lab: the records the scripts
// iis-read, iis-write and iis-write-domain print are built by the
// Encode*/iis*Record functions in this file and read by the Decode*
// functions next to them. The lab (internal/lab/iis.go) answers those
// scripts by calling the same Encode functions on its simulated state, so
// script output, lab and driver cannot drift apart. Records:
//
//	service  name present state startmode           (SMTPSVC, Win32_Service)
//	guest    name enabled                           (local account with RID 501)
//	svc      name relayiplist relayforauth          (IIsSmtpServiceSetting, inherited values)
//	vs       name comment relayiplist relayforauth authflags authanonymous
//	         authbasic authntlm smarthost smarthosttype   (IIsSmtpServerSetting)
//	domain   name routeaction relayforauth relayiplist    (IIsSmtpDomainSetting)
//	adsi     name own present grantbydefault ipgrant ipdeny | name error
//	         (ADSI's view of each server's and the service level's list)
//	error    message type kind feature              (kind "feature-missing" for Web-WMI)
//
// RelayIpList is inheritable (attributes inherit | reference: RelayIpList
// Metabase Property, Windows Server 2003): a
// virtual server without a value of its own enforces the service level's
// (/LM/SmtpSvc). WMI may report that inherited value as the server's, and
// ADSI may report only the node's own value; adsi's "own" (IIS ADSI
// GetDataPaths) says which it is. DecodeIISState resolves this
// (resolveOwn): a server's RelayIpList is always its own value (unset when
// inherited), RelayIpListFrom says where the effective value comes from,
// and every comparison between the two readings is made on effective
// values.
//
// relayiplist is $null for the unset property, "" for a zero-length value
// and upper-case hex otherwise (RL-Hex in the prologue).

// Script names and their parameters.
const (
	// ScriptIISRead reads everything (no parameters).
	ScriptIISRead = "iis-read"
	// ScriptIISWrite sets RelayIpList and RelayForAuth on one virtual
	// server. Params: server (WMI Name, "SmtpSvc/1"), relayiplist ("NULL",
	// "EMPTY" or hex), relayforauth (decimal integer).
	ScriptIISWrite = "iis-write"
	// ScriptIISWriteDomain sets RouteAction of one remote domain. Params:
	// domain (WMI Name, "SmtpSvc/1/Domain/example.com"), routeaction
	// (decimal integer).
	ScriptIISWriteDomain = "iis-write-domain"
)

// Record types of the IIS scripts.
const (
	iisRecService = "service"
	iisRecGuest   = "guest"
	iisRecSvc     = "svc"
	iisRecVS      = "vs"
	iisRecDomain  = "domain"
	iisRecADSI    = "adsi"
)

// ErrorKindFeatureMissing is the "kind" of an error record that says a
// Windows feature is missing; its "feature" field names it.
const ErrorKindFeatureMissing = "feature-missing"

// errorKindADUnavailable is the "kind" of an error record that says Active
// Directory could not be reached (ex2003-* scripts).
const errorKindADUnavailable = "ad-unavailable"

// errorKindSchemaMissing is the "kind" of an error record that says the
// relay-list attribute is not in the schema (ex2003-read-ad).
const errorKindSchemaMissing = "schema-missing"

// IISState is everything iis-read reports: the typed state behind an IIS
// (or Exchange 2003 metabase) inspection and its backup.
type IISState struct {
	Service ServiceInfo `json:"service"`
	// Guest is the local Guest account (RID 501); nil when not found.
	Guest *GuestAccount `json:"guest,omitempty"`
	// ServiceLevel holds the values set on /LM/SmtpSvc, which virtual
	// servers inherit [S1]; nil when the script found no such object.
	ServiceLevel *IISRelaySettings  `json:"service_level,omitempty"`
	Servers      []IISVirtualServer `json:"servers"`
	Domains      []IISDomain        `json:"domains,omitempty"`
	// ADSI is IIS's own reading of each virtual server's RelayIpList
	// (IIS://localhost/SmtpSvc/n, the IIsIPSecurity object [S11]): a
	// cross-check of relaylock's decoder on the real host.
	ADSI []IISADSIView `json:"adsi,omitempty"`
}

// IISADSIView is the ADSI (IIsIPSecurity) view of one RelayIpList.
type IISADSIView struct {
	Name string `json:"name"`
	// Error is set when ADSI could not be used (IIS 6 Metabase
	// Compatibility, Web-Metabase, missing: UNVERIFIED mapping).
	Error string `json:"error,omitempty"`
	// Own is whether the node holds a value of its own rather than
	// inheriting one (IIS ADSI GetDataPaths); nil when not learnt.
	Own *bool `json:"own,omitempty"`
	// Present is false when ADSI returned no value (property unset).
	Present        bool     `json:"present"`
	GrantByDefault bool     `json:"grant_by_default"`
	IPGrant        []string `json:"ip_grant,omitempty"` // "IP, MASK"
	IPDeny         []string `json:"ip_deny,omitempty"`
}

// ADSIViewOf is what ADSI shows for a RelayIpList value, derived from
// relaylock's decoder (the lab uses it; on a real host ADSI is read).
func ADSIViewOf(name string, b RelayListBlob) IISADSIView {
	v := IISADSIView{Name: name}
	l, err := b.Decode()
	if err != nil {
		v.Error = "Unspecified error"
		return v
	}
	if l.Null {
		return v
	}
	v.Present, v.GrantByDefault = true, l.GrantByDefault
	for _, m := range l.Grant {
		v.IPGrant = append(v.IPGrant, adsiEntry(m))
	}
	for _, m := range l.Deny {
		v.IPDeny = append(v.IPDeny, adsiEntry(m))
	}
	return v
}

func adsiEntry(m IPMask) string {
	return netip.AddrFrom4(m.IP).String() + ", " + netip.AddrFrom4(m.Mask).String()
}

func parseADSIEntries(es []string) ([]IPMask, error) {
	var ms []IPMask
	for _, e := range es {
		ip, mask, ok := strings.Cut(e, ",")
		a, err1 := netip.ParseAddr(strings.TrimSpace(ip))
		k, err2 := netip.ParseAddr(strings.TrimSpace(mask))
		if !ok || err1 != nil || err2 != nil || !a.Is4() || !k.Is4() {
			return nil, fmt.Errorf("ADSI entry %q is not \"IP, MASK\"", truncateText(e, 60))
		}
		ms = append(ms, IPMask{IP: a.As4(), Mask: k.As4()})
	}
	return ms, nil
}

// Describe is the canonical text of the view.
func (v IISADSIView) Describe() string {
	switch {
	case v.Error != "":
		return "unavailable: " + v.Error
	case !v.Present:
		return "no value"
	}
	return fmt.Sprintf("GrantByDefault=%v; IPGrant=[%s]; IPDeny=[%s]", v.GrantByDefault, strings.Join(v.IPGrant, "; "), strings.Join(v.IPDeny, "; "))
}

// adsiMismatch compares the ADSI view with relaylock's decoding of the
// same value; "" when they agree or cannot be compared.
func adsiMismatch(v IISADSIView, b RelayListBlob) string {
	if v.Error != "" {
		return ""
	}
	l, err := b.Decode()
	if err != nil {
		return ""
	}
	if !v.Present {
		if l.Null {
			return ""
		}
		return "ADSI reports no value, relaylock decodes " + l.Describe()
	}
	grant, err1 := parseADSIEntries(v.IPGrant)
	deny, err2 := parseADSIEntries(v.IPDeny)
	if err := errors.Join(err1, err2); err != nil {
		return err.Error()
	}
	if l.Null {
		if v.GrantByDefault || len(grant)+len(deny) > 0 {
			return "ADSI reports " + v.Describe() + ", relaylock decodes an unset list"
		}
		return ""
	}
	a := RelayList{GrantByDefault: v.GrantByDefault, Grant: grant, Deny: deny}.Normalize()
	d := RelayList{GrantByDefault: l.GrantByDefault, Grant: l.Grant, Deny: l.Deny}.Normalize()
	a.Flags, d.Flags = 0, 0
	if !a.Equal(d) {
		return "ADSI reports " + v.Describe() + ", relaylock decodes " + l.Describe()
	}
	return ""
}

// adsiFor returns the ADSI view of a virtual server (or of the service
// level, by its name).
func (st IISState) adsiFor(name string) (IISADSIView, bool) {
	for _, v := range st.ADSI {
		if strings.EqualFold(v.Name, name) {
			return v, true
		}
	}
	return IISADSIView{}, false
}

// adsiEffective is ADSI's view of the list a virtual server enforces: its
// own view, or, when ADSI shows no value on the node, the service level's
// view (ADSI may read a node without inheritance).
func (st IISState) adsiEffective(name string) (IISADSIView, bool) {
	v, ok := st.adsiFor(name)
	if !ok || v.Error != "" || v.Present || st.ServiceLevel == nil {
		return v, ok
	}
	if sv, ok := st.adsiFor(st.ServiceLevel.Name); ok && sv.Error == "" {
		sv.Name = name
		return sv, true
	}
	return v, true
}

// adsiMismatchOf compares ADSI's and relaylock's readings of the list vs
// enforces (effective values); "" when they agree or cannot be compared.
func (st IISState) adsiMismatchOf(vs IISVirtualServer) string {
	v, ok := st.adsiEffective(vs.Name)
	if !ok {
		return ""
	}
	eff, _ := st.EffectiveRelayList(vs)
	return adsiMismatch(v, eff)
}

// GuestAccount is the local Guest account.
type GuestAccount struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
}

// IISRelaySettings are the relay properties of the service level.
type IISRelaySettings struct {
	Name         string        `json:"name"`
	RelayIpList  RelayListBlob `json:"relay_ip_list"`
	RelayForAuth int64         `json:"relay_for_auth"`
}

// Where a virtual server's effective RelayIpList comes from
// (IISVirtualServer.RelayIpListFrom).
const (
	// RelayFromOwn: set on the virtual server itself.
	RelayFromOwn = "own"
	// RelayFromInherited: not set on the virtual server; it enforces the
	// service level's value (unset too, possibly).
	RelayFromInherited = "inherited"
	// RelayFromUnknown: the server reports the same value as the service
	// level and IIS (ADSI) could not say whether it is its own.
	RelayFromUnknown = "unknown"
)

// IISVirtualServer is one IIsSmtpServerSetting.
type IISVirtualServer struct {
	Name    string `json:"name"` // WMI Name: SmtpSvc/1
	Comment string `json:"comment,omitempty"`
	// RelayIpList is the server's own value: unset (null) when it
	// inherits the service level's (RelayIpListFrom).
	RelayIpList RelayListBlob `json:"relay_ip_list"`
	// RelayIpListFrom is RelayFromOwn, RelayFromInherited or
	// RelayFromUnknown.
	RelayIpListFrom string `json:"relay_ip_list_from,omitempty"`
	// RelayIpListWMI is what WMI reported for the server when that was the
	// inherited value rather than its own.
	RelayIpListWMI *RelayListBlob `json:"relay_ip_list_wmi,omitempty"`
	RelayForAuth   int64          `json:"relay_for_auth"`
	AuthFlags      string         `json:"auth_flags,omitempty"`
	AuthAnonymous  bool           `json:"auth_anonymous"`
	AuthBasic      bool           `json:"auth_basic"`
	AuthNTLM       bool           `json:"auth_ntlm"`
	SmartHost      string         `json:"smart_host,omitempty"`
	SmartHostType  int64          `json:"smart_host_type"`
}

// IISDomain is one IIsSmtpDomainSetting (local or remote domain).
type IISDomain struct {
	Name         string        `json:"name"` // WMI Name: SmtpSvc/1/Domain/example.com
	RouteAction  int64         `json:"route_action"`
	RelayForAuth int64         `json:"relay_for_auth"`
	RelayIpList  RelayListBlob `json:"relay_ip_list"`
}

// DomainName returns the mail domain of a domain object.
func (d IISDomain) DomainName() string {
	if i := strings.LastIndex(d.Name, "/Domain/"); i >= 0 {
		return d.Name[i+len("/Domain/"):]
	}
	return d.Name
}

// RelayAllowed reports whether the remote domain has "Allow incoming mail
// to be relayed to this domain" set.
func (d IISDomain) RelayAllowed() bool { return d.RouteAction&RouteActionDomainRelay != 0 }

// VirtualServerOf returns the virtual server a domain object belongs to
// ("SmtpSvc/1" for "SmtpSvc/1/Domain/x").
func (d IISDomain) VirtualServerOf() string {
	if i := strings.Index(d.Name, "/Domain/"); i >= 0 {
		return d.Name[:i]
	}
	return ""
}

// RemoteDomainMatches reports whether a remote-domain name (which may be
// "*" or "*.example.com" [S14b]) matches a recipient domain.
func RemoteDomainMatches(pattern, domain string) bool {
	p := strings.ToLower(strings.TrimSuffix(pattern, "."))
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	switch {
	case p == "*":
		return true
	case strings.HasPrefix(p, "*."):
		return strings.HasSuffix(d, p[1:])
	default:
		return p == d
	}
}

// EffectiveRelayList is the RelayIpList a virtual server enforces: its own
// value, or the service level's when its own is unset (the property is
// inheritable); inherited is true in the second case when the
// service level has a value. vs must come from DecodeIISState, which makes
// RelayIpList the server's own value whichever way WMI reports it.
func (st IISState) EffectiveRelayList(vs IISVirtualServer) (RelayListBlob, bool) {
	if vs.RelayIpList.Null && st.ServiceLevel != nil && !st.ServiceLevel.RelayIpList.Null {
		return st.ServiceLevel.RelayIpList, true
	}
	return vs.RelayIpList, false
}

// Server returns the virtual server named name.
func (st IISState) Server(name string) (IISVirtualServer, bool) {
	for _, vs := range st.Servers {
		if vs.Name == name {
			return vs, true
		}
	}
	return IISVirtualServer{}, false
}

// --- records (shared with the lab) ----------------------------------------

func setBlob(r *psframe.Record, name string, b RelayListBlob) {
	switch {
	case b.Null:
		r.SetNull(name)
	case len(b.Bytes) == 0:
		r.Set(name, "")
	default:
		r.Set(name, b.String())
	}
}

func getBlob(r psframe.Record, name string) (RelayListBlob, error) {
	if !r.Has(name) {
		return RelayListBlob{}, fmt.Errorf("record %s: field %s missing", r.Type, name)
	}
	if r.IsNull(name) {
		return RelayListBlob{Null: true}, nil
	}
	v := r.Str(name)
	if v == "" {
		return RelayListBlob{Bytes: []byte{}}, nil
	}
	b, err := ParseRelayListBlob(strings.ToUpper(v))
	if err != nil || b.Null || len(b.Bytes) == 0 {
		return RelayListBlob{}, fmt.Errorf("record %s: field %s: %w", r.Type, name, ErrRelayList)
	}
	return b, nil
}

func boolText(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// IISServiceRecord is the "service" record for a Windows service.
func IISServiceRecord(s ServiceInfo) psframe.Record {
	r := psframe.NewRecord(iisRecService).Set("name", s.Name).Set("present", boolText(s.Present)).
		Set("state", s.State).Set("startmode", s.StartMode)
	return *r
}

// IISServiceLevelRecord is the "svc" record of the service level, as
// iis-read and iis-write print it.
func IISServiceLevelRecord(s IISRelaySettings) psframe.Record {
	r := psframe.NewRecord(iisRecSvc).Set("name", s.Name)
	setBlob(r, "relayiplist", s.RelayIpList)
	r.Set("relayforauth", strconv.FormatInt(s.RelayForAuth, 10))
	return *r
}

// IISServerRecord is the "vs" record for one virtual server, as iis-read
// and iis-write print it.
func IISServerRecord(vs IISVirtualServer) psframe.Record {
	r := psframe.NewRecord(iisRecVS).Set("name", vs.Name).Set("comment", vs.Comment)
	setBlob(r, "relayiplist", vs.RelayIpList)
	r.Set("relayforauth", strconv.FormatInt(vs.RelayForAuth, 10))
	if vs.AuthFlags == "" {
		r.SetNull("authflags")
	} else {
		r.Set("authflags", vs.AuthFlags)
	}
	r.Set("authanonymous", boolText(vs.AuthAnonymous)).Set("authbasic", boolText(vs.AuthBasic)).
		Set("authntlm", boolText(vs.AuthNTLM)).Set("smarthost", vs.SmartHost).
		Set("smarthosttype", strconv.FormatInt(vs.SmartHostType, 10))
	return *r
}

// IISDomainRecord is the "domain" record for one domain object.
func IISDomainRecord(d IISDomain) psframe.Record {
	r := psframe.NewRecord(iisRecDomain).Set("name", d.Name).Set("routeaction", strconv.FormatInt(d.RouteAction, 10)).
		Set("relayforauth", strconv.FormatInt(d.RelayForAuth, 10))
	setBlob(r, "relayiplist", d.RelayIpList)
	return *r
}

// EncodeIISState returns the records iis-read prints for st.
func EncodeIISState(st IISState) []psframe.Record {
	recs := []psframe.Record{IISServiceRecord(st.Service)}
	if st.Guest != nil {
		recs = append(recs, *psframe.NewRecord(iisRecGuest).Set("name", st.Guest.Name).Set("enabled", boolText(st.Guest.Enabled)))
	}
	if st.ServiceLevel != nil {
		recs = append(recs, IISServiceLevelRecord(*st.ServiceLevel))
	}
	for _, vs := range st.Servers {
		recs = append(recs, IISServerRecord(vs))
	}
	for _, d := range st.Domains {
		recs = append(recs, IISDomainRecord(d))
	}
	for _, v := range st.ADSI {
		recs = append(recs, IISADSIRecord(v))
	}
	return recs
}

// IISADSIRecord is the "adsi" record iis-read prints for one virtual
// server: name and error on failure, else present, grantbydefault and the
// IPGrant / IPDeny strings joined by newlines.
func IISADSIRecord(v IISADSIView) psframe.Record {
	r := psframe.NewRecord(iisRecADSI).Set("name", v.Name)
	if v.Error != "" {
		r.Set("error", v.Error)
		return *r
	}
	if v.Own == nil {
		r.SetNull("own")
	} else {
		r.Set("own", boolText(*v.Own))
	}
	r.Set("present", boolText(v.Present))
	if v.Present {
		r.Set("grantbydefault", boolText(v.GrantByDefault)).SetList("ipgrant", v.IPGrant).SetList("ipdeny", v.IPDeny)
	}
	return *r
}

func decodeADSI(r psframe.Record) (IISADSIView, error) {
	v := IISADSIView{Name: r.Str("name")}
	if r.Has("error") {
		v.Error = r.Str("error")
		if v.Error == "" {
			v.Error = "unknown ADSI error"
		}
		return v, nil
	}
	var err error
	if r.Has("own") && !r.IsNull("own") {
		own, err := r.Bool("own")
		if err != nil {
			return v, err
		}
		v.Own = &own
	}
	if v.Present, err = r.Bool("present"); err != nil || !v.Present {
		return v, err
	}
	if v.GrantByDefault, err = r.Bool("grantbydefault"); err != nil {
		return v, err
	}
	v.IPGrant, v.IPDeny = r.List("ipgrant"), r.List("ipdeny")
	return v, nil
}

func decodeServer(r psframe.Record) (IISVirtualServer, error) {
	var vs IISVirtualServer
	var err error
	vs.Name = r.Str("name")
	if vs.Name == "" {
		return vs, errors.New("record vs: empty name")
	}
	vs.Comment = r.Str("comment")
	if vs.RelayIpList, err = getBlob(r, "relayiplist"); err != nil {
		return vs, err
	}
	if vs.RelayForAuth, err = intOrZero(r, "relayforauth"); err != nil {
		return vs, err
	}
	vs.AuthFlags = r.Str("authflags")
	if vs.AuthAnonymous, err = boolOrFalse(r, "authanonymous"); err != nil {
		return vs, err
	}
	if vs.AuthBasic, err = boolOrFalse(r, "authbasic"); err != nil {
		return vs, err
	}
	if vs.AuthNTLM, err = boolOrFalse(r, "authntlm"); err != nil {
		return vs, err
	}
	vs.SmartHost = r.Str("smarthost")
	if vs.SmartHostType, err = intOrZero(r, "smarthosttype"); err != nil {
		return vs, err
	}
	return vs, nil
}

func decodeDomain(r psframe.Record) (IISDomain, error) {
	var d IISDomain
	var err error
	if d.Name = r.Str("name"); d.Name == "" {
		return d, errors.New("record domain: empty name")
	}
	if d.RouteAction, err = intOrZero(r, "routeaction"); err != nil {
		return d, err
	}
	if d.RelayForAuth, err = intOrZero(r, "relayforauth"); err != nil {
		return d, err
	}
	if d.RelayIpList, err = getBlob(r, "relayiplist"); err != nil {
		return d, err
	}
	return d, nil
}

// intOrZero reads an integer field; $null (a WMI property never set)
// reads as 0, the metabase default.
func intOrZero(r psframe.Record, name string) (int64, error) {
	if r.IsNull(name) || (r.Has(name) && strings.TrimSpace(r.Str(name)) == "") {
		return 0, nil
	}
	return r.Int(name)
}

func boolOrFalse(r psframe.Record, name string) (bool, error) {
	if r.IsNull(name) {
		return false, nil
	}
	return r.Bool(name)
}

// DecodeIISState reads iis-read's records.
func DecodeIISState(out *psframe.Output) (IISState, error) {
	var st IISState
	if out == nil {
		return st, errors.New("no script output")
	}
	for _, r := range out.Records {
		switch r.Type {
		case iisRecService:
			present, err := r.Bool("present")
			if err != nil {
				return st, err
			}
			st.Service = ServiceInfo{Name: r.Str("name"), Present: present, State: r.Str("state"), StartMode: r.Str("startmode")}
		case iisRecGuest:
			en, err := r.Bool("enabled")
			if err != nil {
				return st, err
			}
			st.Guest = &GuestAccount{Name: r.Str("name"), Enabled: en}
		case iisRecSvc:
			b, err := getBlob(r, "relayiplist")
			if err != nil {
				return st, err
			}
			rfa, err := intOrZero(r, "relayforauth")
			if err != nil {
				return st, err
			}
			st.ServiceLevel = &IISRelaySettings{Name: r.Str("name"), RelayIpList: b, RelayForAuth: rfa}
		case iisRecVS:
			vs, err := decodeServer(r)
			if err != nil {
				return st, err
			}
			st.Servers = append(st.Servers, vs)
		case iisRecDomain:
			d, err := decodeDomain(r)
			if err != nil {
				return st, err
			}
			st.Domains = append(st.Domains, d)
		case iisRecADSI:
			v, err := decodeADSI(r)
			if err != nil {
				return st, err
			}
			st.ADSI = append(st.ADSI, v)
		}
	}
	sort.Slice(st.Servers, func(i, j int) bool { return st.Servers[i].Name < st.Servers[j].Name })
	sort.Slice(st.Domains, func(i, j int) bool { return st.Domains[i].Name < st.Domains[j].Name })
	for i := range st.Servers {
		v, ok := st.adsiFor(st.Servers[i].Name)
		var pv *IISADSIView
		if ok {
			pv = &v
		}
		resolveOwn(&st.Servers[i], pv, st.ServiceLevel)
	}
	return st, nil
}

// resolveOwn makes vs.RelayIpList the server's own value and sets
// RelayIpListFrom, from ADSI's "own" when IIS answered it, else from what
// the readings imply: WMI reports no value only for a server without one
// of its own; a value different from the service level's is the server's
// own; a value equal to it may be either.
func resolveOwn(vs *IISVirtualServer, adsi *IISADSIView, svc *IISRelaySettings) {
	svcSet := svc != nil && !svc.RelayIpList.Null
	switch {
	case adsi != nil && adsi.Error == "" && adsi.Own != nil && !*adsi.Own:
		if !vs.RelayIpList.Null {
			w := vs.RelayIpList
			vs.RelayIpListWMI = &w
		}
		vs.RelayIpList = RelayListBlob{Null: true}
		vs.RelayIpListFrom = RelayFromInherited
	case adsi != nil && adsi.Error == "" && adsi.Own != nil:
		vs.RelayIpListFrom = RelayFromOwn
	case vs.RelayIpList.Null:
		vs.RelayIpListFrom = RelayFromInherited
	case svcSet && vs.RelayIpList.Equal(svc.RelayIpList):
		vs.RelayIpListFrom = RelayFromUnknown
	default:
		vs.RelayIpListFrom = RelayFromOwn
	}
}

// --- settings rows ----------------------------------------------------------

// Setting names of the relay properties.
const (
	SettingRelayIpList    = "RelayIpList"     // readable: mode and entries
	SettingRelayIpListRaw = "RelayIpList.raw" // NULL, EMPTY or hex: exact
	SettingRelayForAuth   = "RelayForAuth"
	SettingRouteAction    = "RouteAction"
)

// DescribeBlob is the canonical readable value of a RelayIpList: its
// decoded entries in normalized order, so that two values that differ only
// in how they are stored (entry order) read the same; the raw row keeps
// the exact bytes.
func DescribeBlob(b RelayListBlob) string {
	l, err := b.Decode()
	if err != nil {
		return "undecodable: " + err.Error()
	}
	return l.Normalize().Describe()
}

func relayRows(object string, b RelayListBlob, rfa int64) []Setting {
	return []Setting{
		{object, SettingRelayIpList, DescribeBlob(b)},
		{object, SettingRelayIpListRaw, b.String()},
		{object, SettingRelayForAuth, strconv.FormatInt(rfa, 10)},
	}
}

// IISSettings returns the settings rows of st, in a fixed order.
func IISSettings(st IISState) []Setting {
	var rows []Setting
	svc := "Service " + st.Service.Name
	rows = append(rows, Setting{svc, "Present", strconv.FormatBool(st.Service.Present)})
	if st.Service.Present {
		rows = append(rows, Setting{svc, "State", st.Service.State}, Setting{svc, "StartMode", st.Service.StartMode})
	}
	if st.Guest != nil {
		rows = append(rows, Setting{"Account " + st.Guest.Name, "Enabled", strconv.FormatBool(st.Guest.Enabled)})
	}
	if st.ServiceLevel != nil {
		rows = append(rows, relayRows(st.ServiceLevel.Name, st.ServiceLevel.RelayIpList, st.ServiceLevel.RelayForAuth)...)
	}
	for _, vs := range st.Servers {
		rows = append(rows, relayRows(vs.Name, vs.RelayIpList, vs.RelayForAuth)...)
		if from := st.relayFromText(vs); from != "" {
			rows = append(rows, Setting{vs.Name, SettingRelayIpListFrom, from})
		}
		rows = append(rows,
			Setting{vs.Name, "AuthAnonymous", strconv.FormatBool(vs.AuthAnonymous)},
			Setting{vs.Name, "AuthBasic", strconv.FormatBool(vs.AuthBasic)},
			Setting{vs.Name, "AuthNTLM", strconv.FormatBool(vs.AuthNTLM)},
			Setting{vs.Name, "SmartHost", vs.SmartHost},
			Setting{vs.Name, "SmartHostType", strconv.FormatInt(vs.SmartHostType, 10)},
		)
		if v, ok := st.adsiFor(vs.Name); ok {
			rows = append(rows, Setting{vs.Name, "RelayIpList.adsi", v.Describe()})
		}
		if eff, inherited := st.EffectiveRelayList(vs); inherited {
			rows = append(rows, Setting{vs.Name, "RelayIpList.effective", DescribeBlob(eff) + " (inherited from " + st.ServiceLevel.Name + ")"})
		}
	}
	for _, d := range st.Domains {
		rows = append(rows,
			Setting{d.Name, SettingRouteAction, strconv.FormatInt(d.RouteAction, 10)},
			Setting{d.Name, "RelayAllowed", strconv.FormatBool(d.RelayAllowed())},
		)
	}
	return rows
}

// SettingRelayIpListFrom says whether a virtual server's RelayIpList is its
// own or inherited from the service level.
const SettingRelayIpListFrom = "RelayIpList.from"

func (st IISState) relayFromText(vs IISVirtualServer) string {
	svc := "the service level"
	if st.ServiceLevel != nil {
		svc = st.ServiceLevel.Name
	}
	switch vs.RelayIpListFrom {
	case RelayFromOwn:
		return "own value"
	case RelayFromInherited:
		return "inherited from " + svc + " (no value of its own)"
	case RelayFromUnknown:
		return "unknown: the same value as " + svc + ", and IIS (ADSI) could not say whether it is the server's own"
	}
	return ""
}

// --- findings ----------------------------------------------------------------

// Finding IDs of the IIS driver. The Exchange 2003 driver reports the same
// causes with the prefix "EX2003-" instead of "IIS-".
const (
	FindingAllExceptEmpty = "RELAY-ALL-EXCEPT-EMPTY"     // zero-length RelayIpList: everyone relays
	FindingGrantEveryone  = "RELAY-GRANT-EVERYONE"       // grant entry with mask 0.0.0.0
	FindingGrantProber    = "RELAY-GRANT-PROBER"         // grant list covers the prober
	FindingDenyList       = "RELAY-DENY-LIST"            // all except a deny list
	FindingUndecodable    = "RELAY-LIST-UNDECODABLE"     // RelayIpList not understood
	FindingDomainWildcard = "RELAY-DOMAIN-WILDCARD"      // remote domain * (or *.tld) with relay
	FindingDomainRelay    = "RELAY-DOMAIN"               // remote domain with relay
	FindingAuthGuest      = "RELAY-AUTH-GUEST"           // RelayForAuth + Basic + Guest enabled
	FindingBroadRange     = "RELAY-BROAD-RANGE"          // grant entry wider than /16
	FindingRestricted     = "RELAY-RESTRICTED"           // info: relay restricted
	FindingDecodeMismatch = "RELAY-LIST-DECODE-MISMATCH" // ADSI reads the list differently
	FindingUnsorted       = "RELAY-LIST-UNSORTED"        // addresses not in ascending order
)

// broadGrantPrefix: grant entries with a shorter prefix (more than 65536
// addresses, or a non-contiguous mask) are reported as broad.
const broadGrantPrefix = 16

func anyAllowed(l RelayList, prober []netip.Addr) bool {
	for _, p := range prober {
		if l.Allows(p) {
			return true
		}
	}
	return false
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// relayListFindings names the causes in one effective RelayIpList, plus
// FindingUnsorted when its addresses are out of order.
// prefix is "IIS-" or "EX2003-"; where names the object for the texts.
func relayListFindings(prefix, object string, b RelayListBlob, inheritedFrom string, prober []netip.Addr, fix string) []Finding {
	fs := relayListCauses(prefix, object, b, inheritedFrom, prober, fix)
	if l, err := b.Decode(); err == nil && !l.StoredSorted() {
		fs = append(fs, Finding{
			ID: prefix + FindingUnsorted, Title: "Relay list addresses are not in ascending order", Severity: SeverityLow,
			Object: object, Setting: SettingRelayIpList, Value: l.Describe(),
			Detail: "The addresses under one mask are stored out of ascending order (as some public scripts write them). IIS is believed to binary-search them (UNVERIFIED), " +
				"so some listed clients may be refused relay: this fails closed, no other address gains relay.",
			Remediation: "Run relaylock remediate with the clients that must relay: it rewrites the list in order. Or re-enter the list in the Relay dialog.",
		})
	}
	return fs
}

func relayListCauses(prefix, object string, b RelayListBlob, inheritedFrom string, prober []netip.Addr, fix string) []Finding {
	value := b.String()
	detailSuffix := ""
	if inheritedFrom != "" {
		detailSuffix = " The virtual server has no value of its own and inherits this one from " + inheritedFrom + "."
	}
	l, err := b.Decode()
	if err != nil {
		return []Finding{{
			ID: prefix + FindingUndecodable, Title: "Relay restriction list could not be decoded", Severity: SeverityMedium,
			Object: object, Setting: SettingRelayIpList, Value: value,
			Detail:      "RelayIpList does not follow the IPSECLIST layout relaylock knows (" + err.Error() + "); its effect cannot be judged from the settings. Rely on the external probe." + detailSuffix,
			Remediation: fix,
		}}
	}
	desc := l.Describe()
	switch {
	case !l.Null && l.GrantByDefault && len(l.Deny) == 0:
		return []Finding{{
			ID: prefix + FindingAllExceptEmpty, Title: "Relay allowed for all computers (\"All except the list below\" with an empty list)", Severity: SeverityHigh,
			Object: object, Setting: SettingRelayIpList, Value: desc, Explains: len(prober) > 0,
			Detail:      "RelayIpList is set to a zero-length value, which IIS shows as \"All except the list below\" with nothing listed: every client may relay mail to any domain without authenticating. This is an open relay." + detailSuffix,
			Remediation: fix,
		}}
	case l.IsOpenToAll():
		return []Finding{{
			ID: prefix + FindingGrantEveryone, Title: "Relay allowed for every address (grant entry 0.0.0.0 mask 0.0.0.0)", Severity: SeverityHigh,
			Object: object, Setting: SettingRelayIpList, Value: desc, Explains: len(prober) > 0,
			Detail:      "The relay grant list contains an entry whose mask is 0.0.0.0, which matches every client address. This is an open relay." + detailSuffix,
			Remediation: fix,
		}}
	case l.GrantByDefault:
		covered := anyAllowed(l, prober)
		d := "RelayIpList is \"All except the list below\": every client not on the deny list may relay (" + desc + ")."
		if covered {
			d += " The probe address(es) " + addrList(prober) + " are not on the deny list."
		}
		return []Finding{{
			ID: prefix + FindingDenyList, Title: "Relay allowed for all computers except a deny list", Severity: SeverityHigh,
			Object: object, Setting: SettingRelayIpList, Value: desc, Explains: covered,
			Detail: d + detailSuffix, Remediation: fix,
		}}
	}
	var fs []Finding
	if !l.Null && anyAllowed(l, prober) {
		var hit []string
		for _, p := range prober {
			for _, g := range l.Grant {
				if g.Contains(p) {
					hit = append(hit, p.String()+" in "+g.String())
					break
				}
			}
		}
		fs = append(fs, Finding{
			ID: prefix + FindingGrantProber, Title: "Relay grant list covers the probe address", Severity: SeverityHigh,
			Object: object, Setting: SettingRelayIpList, Value: desc, Explains: true,
			Detail:      "The relay grant list lets the address the external probe came from relay (" + strings.Join(hit, "; ") + "). If the probe ran from outside the organisation, the list is too wide." + detailSuffix,
			Remediation: fix,
		})
	}
	var broad []string
	for _, g := range l.Grant {
		if n := g.PrefixLen(); n < broadGrantPrefix && n != 0 { // /0 is FindingGrantEveryone
			broad = append(broad, g.String())
		}
	}
	if len(broad) > 0 {
		fs = append(fs, Finding{
			ID: prefix + FindingBroadRange, Title: "Relay allowed for a whole network range", Severity: SeverityMedium,
			Object: object, Setting: SettingRelayIpList, Value: desc,
			Detail: fmt.Sprintf("The relay grant list holds ranges wider than /%d (%s): every host in them may relay without authenticating, so one compromised machine there can send spam through this server.",
				broadGrantPrefix, strings.Join(broad, ", ")) + detailSuffix,
			Remediation: "Narrow the list to the application servers and devices that send mail.",
		})
	}
	if len(fs) > 0 {
		return fs
	}
	return []Finding{{
		ID: prefix + FindingRestricted, Title: "Relay restricted by address list", Severity: SeverityInfo,
		Object: object, Setting: SettingRelayIpList, Value: desc,
		Detail: "Only the listed clients may relay without authenticating: " + desc + "." + detailSuffix,
	}}
}

func domainFindings(prefix string, domains []IISDomain, fix string) []Finding {
	var fs []Finding
	for _, d := range domains {
		if !d.RelayAllowed() {
			continue
		}
		name := d.DomainName()
		val := fmt.Sprintf("%d (0x%X)", d.RouteAction, d.RouteAction)
		if name == "*" || (strings.HasPrefix(name, "*.") && !strings.Contains(name[2:], ".")) {
			fs = append(fs, Finding{
				ID: prefix + FindingDomainWildcard, Title: "Remote domain " + name + " allows relaying to every matching domain", Severity: SeverityHigh,
				Object: d.Name, Setting: SettingRouteAction, Value: val, Explains: name == "*",
				Detail:      "The remote domain " + name + " has \"Allow incoming mail to be relayed to this domain\" set. It overrides the relay restrictions of the Access tab for every recipient domain it matches, so anyone can relay through it.",
				Remediation: fix,
			})
			continue
		}
		fs = append(fs, Finding{
			ID: prefix + FindingDomainRelay, Title: "Remote domain " + name + " allows relaying to it", Severity: SeverityMedium,
			Object: d.Name, Setting: SettingRouteAction, Value: val,
			Detail:      "The remote domain " + name + " has \"Allow incoming mail to be relayed to this domain\" set: anyone may relay mail to " + name + " through this server, whatever the relay restrictions say. This is only intended for backup MX or internal forwarding.",
			Remediation: fix,
		})
	}
	return fs
}

func authGuestFinding(prefix string, st IISState, vs IISVirtualServer) []Finding {
	if vs.RelayForAuth == 0 || !vs.AuthBasic || st.Guest == nil || !st.Guest.Enabled {
		return nil
	}
	return []Finding{{
		ID: prefix + FindingAuthGuest, Title: "Authenticated relay with Basic authentication while the Guest account is enabled", Severity: SeverityMedium,
		Object: vs.Name, Setting: SettingRelayForAuth, Value: strconv.FormatInt(vs.RelayForAuth, 10),
		Detail:      "\"Allow all computers which successfully authenticate to relay\" is on, Basic authentication is offered and the local Guest account (" + st.Guest.Name + ") is enabled. Spammers brute-force SMTP AUTH, and an enabled Guest account can let a failed login still relay: relaylock audit --auth-tests shows whether it does (tests A41b, A41c).",
		Remediation: "Disable the Guest account; turn off authenticated relay (RelayForAuth) unless clients need it; offer Basic authentication only over TLS.",
	}}
}

const iisFixText = "Run relaylock remediate: it sets \"Only the list below\" with the allowed clients (and 127.0.0.1), keeps or clears authenticated relay as requested, and proves the result with a re-probe."

// iisFindings names every cause in st.
func iisFindings(prefix string, st IISState, prober []netip.Addr, fix string) []Finding {
	var fs []Finding
	for _, vs := range st.Servers {
		eff, inherited := st.EffectiveRelayList(vs)
		from := ""
		if inherited {
			from = st.ServiceLevel.Name
		}
		fs = append(fs, relayListFindings(prefix, vs.Name, eff, from, prober, fix)...)
		if _, ok := st.adsiFor(vs.Name); ok {
			if mm := st.adsiMismatchOf(vs); mm != "" {
				fs = append(fs, Finding{
					ID: prefix + FindingDecodeMismatch, Title: "IIS reads the relay list differently from relaylock", Severity: SeverityMedium,
					Object: vs.Name, Setting: SettingRelayIpList, Value: vs.RelayIpList.String(),
					Detail:      "IIS's own reading of RelayIpList (ADSI IIsIPSecurity) differs from relaylock's decoding of the stored bytes: " + mm + ". Parts of the IPSECLIST layout are inferred from public samples; trust the ADSI view and the external probe. relaylock will not write hand-built bytes to this server unless forced.",
					Remediation: "Check the Relay dialog of the virtual server, and report the RelayIpList value to the relaylock maintainers.",
				})
			}
		}
		fs = append(fs, authGuestFinding(prefix, st, vs)...)
	}
	fs = append(fs, domainFindings(prefix, st.Domains, "Clear \"Allow incoming mail to be relayed to this domain\" on the remote domain unless it is a domain this server is a backup MX for (relaylock clears it when the operator asks to fix relay domains).")...)
	return fs
}

// --- script runs -------------------------------------------------------------

// runScript runs one script and returns its output. A non-zero exit code
// becomes an error (CheckRun's classification); an error record of kind
// feature-missing always wraps ErrFeatureMissing.
func runScript(ctx context.Context, r Runner, host, script string, params map[string]string, runs *[]ScriptRun) (*psframe.Output, error) {
	run, err := r.Run(ctx, script, params)
	if run != nil && runs != nil {
		*runs = append(*runs, *run)
	}
	if err == nil && run != nil && run.ExitCode != 0 {
		err = CheckRun(host, run)
	}
	if run != nil && run.Output != nil {
		for _, e := range run.Output.Of(psframe.ErrorRecord) {
			switch e.Str("kind") {
			case ErrorKindFeatureMissing:
				if err == nil || !errors.Is(err, ErrFeatureMissing) {
					fm := fmt.Errorf("%w: %s is not installed on %s (%s)", ErrFeatureMissing, featureText(e.Str("feature")), host, e.Str("message"))
					if e.Str("feature") == "Web-WMI" {
						fm = withKind(fm, ErrWebWMIMissing)
					}
					return nil, fm
				}
			case errorKindADUnavailable:
				return nil, fmt.Errorf("%w: script %s on %s: %s", ErrADUnavailable, script, host, e.Str("message"))
			case errorKindSchemaMissing:
				return nil, fmt.Errorf("%w: %s (the lDAPDisplayName relaylock assumes for the Exchange 2000/2003 relay list, which no public source confirms; nothing was read or changed; "+
					"tell the relaylock maintainers which attribute Exchange System Manager writes for the relay restrictions): %s", ErrSchemaAttribute, e.Str("attribute"), e.Str("message"))
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if run == nil || run.Output == nil {
		return nil, fmt.Errorf("script %s on %s: %w", script, host, psframe.ErrFrame)
	}
	return run.Output, nil
}

func featureText(f string) string {
	if f == "Web-WMI" {
		return "Web-WMI (IIS 6 WMI Compatibility)"
	}
	return f
}

// --- driver ------------------------------------------------------------------

// IISDesired is the typed plan of the IIS driver (Plan.Desired): the
// values Apply writes, one write per object.
type IISDesired struct {
	Servers []IISServerWrite `json:"servers,omitempty"`
	Domains []IISDomainWrite `json:"domains,omitempty"`
}

// IISServerWrite is one iis-write run.
type IISServerWrite struct {
	Name         string        `json:"name"`
	RelayIpList  RelayListBlob `json:"relay_ip_list"`
	RelayForAuth int64         `json:"relay_for_auth"`
}

// IISDomainWrite is one iis-write-domain run.
type IISDomainWrite struct {
	Name        string `json:"name"`
	RouteAction int64  `json:"route_action"`
}

// IISDriver is the IIS 6 SMTP driver.
type IISDriver struct{}

// Platform implements Driver.
func (IISDriver) Platform() Platform { return PlatformIIS }

// Inspect implements Driver.
func (IISDriver) Inspect(ctx context.Context, r Runner, host string, info HostInfo, prober []netip.Addr) (*Inspection, error) {
	insp := &Inspection{Host: host, Time: time.Now().UTC(), Platform: PlatformIIS, HostInfo: info}
	out, err := runScript(ctx, r, host, ScriptIISRead, nil, &insp.Runs)
	if err != nil {
		return insp, fmt.Errorf("read IIS SMTP settings: %w", err)
	}
	st, err := DecodeIISState(out)
	if err != nil {
		return insp, fmt.Errorf("read IIS SMTP settings: %w", err)
	}
	if len(st.Servers) == 0 {
		return insp, fmt.Errorf("read IIS SMTP settings on %s: no SMTP virtual server found (IIsSmtpServerSetting)", host)
	}
	if insp.State, err = json.Marshal(st); err != nil {
		return insp, err
	}
	insp.Settings = IISSettings(st)
	insp.Findings = iisFindings("IIS-", st, prober, iisFixText)
	return insp, nil
}

// DesiredRelayList is the list a plan writes for req: "Only the list
// below" with the allowed clients, plus 127.0.0.1 unless NoLoopback.
// IIS relay lists hold IPv4 only; ranges are split into prefixes. flags
// are the existing header flags to keep. With nothing to list the result
// is the unset (null) property: only authenticated clients may relay.
func DesiredRelayList(req Request, flags uint32) (RelayList, error) {
	var grant []IPMask
	if !req.NoLoopback {
		grant = append(grant, IPMask{IP: [4]byte{127, 0, 0, 1}, Mask: [4]byte{255, 255, 255, 255}})
	}
	for _, a := range req.Allow {
		if !a.From.Is4() {
			return RelayList{}, fmt.Errorf("allow entry %s: IIS SMTP relay restrictions hold IPv4 addresses only", a)
		}
		for _, p := range rangePrefixes4(a.From, a.To) {
			m, err := IPMaskFromPrefix(p)
			if err != nil {
				return RelayList{}, err
			}
			grant = append(grant, m)
		}
	}
	if len(grant) == 0 {
		return RelayList{Null: true}, nil
	}
	if flags == 0 {
		flags = relayListDefaultFlags
	}
	return RelayList{Grant: grant, Flags: flags}.Normalize(), nil
}

// rangePrefixes4 splits an inclusive IPv4 range into CIDR prefixes.
func rangePrefixes4(from, to netip.Addr) []netip.Prefix {
	f := uint64(u32of(from))
	t := uint64(u32of(to))
	var ps []netip.Prefix
	for f <= t {
		bits := 32
		for bits > 0 {
			size := uint64(1) << (32 - (bits - 1))
			if f%size != 0 || f+size-1 > t {
				break
			}
			bits--
		}
		var b [4]byte
		b[0], b[1], b[2], b[3] = byte(f>>24), byte(f>>16), byte(f>>8), byte(f)
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4(b), bits))
		f += uint64(1) << (32 - bits)
	}
	return ps
}

func u32of(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func rfaWanted(req Request) int64 {
	if req.AllowAuthenticated {
		return RelayForAuthEnabled
	}
	return RelayForAuthDisabled
}

// relayTarget is one relay object (virtual server or AD object) to plan.
type relayTarget struct {
	object string
	cur    RelayListBlob
	rfa    int64
	// inherits describes the inherited value the server enforces while
	// cur is unset ("" when none): shown in the plan's current value.
	inherits string
}

// relayTargetOf is the relay target of a virtual server.
func (st IISState) relayTargetOf(vs IISVirtualServer) relayTarget {
	t := relayTarget{object: vs.Name, cur: vs.RelayIpList, rfa: vs.RelayForAuth}
	if eff, inherited := st.EffectiveRelayList(vs); inherited {
		t.inherits = DescribeBlob(eff) + ", inherited from " + st.ServiceLevel.Name
	}
	return t
}

// planRelay computes the values to write and the changes for one relay
// object; no changes when it already matches the request.
func planRelay(t relayTarget, req Request, why string) (want RelayListBlob, wantRFA int64, changes []Change, notes []string, err error) {
	curList, decErr := t.cur.Decode()
	flags := uint32(0)
	if decErr == nil {
		flags = curList.Flags
	}
	wl, err := DesiredRelayList(req, flags)
	if err != nil {
		return want, 0, nil, nil, err
	}
	if wl.Null {
		notes = append(notes, t.object+": no client to list (no --allow and --no-loopback): RelayIpList is cleared to the unset value (\"Only the list below\", empty); clearing through WMI ($null + Put) is UNVERIFIED")
	}
	if want, err = BlobOf(wl); err != nil {
		return want, 0, nil, nil, err
	}
	for _, g := range wl.Grant {
		if g.PrefixLen() != 32 {
			notes = append(notes, t.object+": "+g.String()+" is not a single host; the IPSECLIST encoding of masks other than /32 is UNVERIFIED (confirm with the re-probe and the Relay dialog)")
			break
		}
	}
	// A list with the requested entries is still rewritten when its
	// addresses are out of order (relayListSorted).
	sameList := decErr == nil && curList.Equal(wl) && curList.StoredSorted()
	if sameList {
		want = t.cur // keep the exact bytes: nothing to write
	} else {
		cur := DescribeBlob(t.cur)
		if t.inherits != "" {
			cur += " (enforces " + t.inherits + ")"
		}
		changes = append(changes,
			Change{Object: t.object, Setting: SettingRelayIpList, Current: cur, New: DescribeBlob(want), Why: why},
			Change{Object: t.object, Setting: SettingRelayIpListRaw, Current: t.cur.String(), New: want.String(), Why: "exact value written (IPSECLIST blob)"})
	}
	wantRFA = rfaWanted(req)
	if (t.rfa != 0) == (wantRFA != 0) {
		wantRFA = t.rfa // already as requested (any non-zero value is enabled)
	} else {
		w := "authenticated relay not requested (--allow-authenticated not given)"
		if req.AllowAuthenticated {
			w = "authenticated clients may relay (--allow-authenticated)"
		}
		changes = append(changes, Change{Object: t.object, Setting: SettingRelayForAuth, Current: strconv.FormatInt(t.rfa, 10), New: strconv.FormatInt(wantRFA, 10), Why: w})
	}
	return want, wantRFA, changes, notes, nil
}

func allowWhy(req Request) string {
	var s []string
	if !req.NoLoopback {
		s = append(s, "127.0.0.1")
	}
	for _, a := range req.Allow {
		s = append(s, a.String())
	}
	if len(s) == 0 {
		return "restrict relay to authenticated clients"
	}
	return "restrict unauthenticated relay to " + strings.Join(s, ", ")
}

func planDomains(st IISState, req Request, p *Plan, desired *[]IISDomainWrite) {
	for _, d := range st.Domains {
		if !d.RelayAllowed() {
			continue
		}
		if !req.FixDomains {
			p.Notes = append(p.Notes, fmt.Sprintf("remote domain %s (%s) allows relaying to it (RouteAction %d); not changed unless the operator asks to fix relay domains", d.DomainName(), d.Name, d.RouteAction))
			continue
		}
		n := d.RouteAction &^ RouteActionDomainRelay
		*desired = append(*desired, IISDomainWrite{Name: d.Name, RouteAction: n})
		p.Changes = append(p.Changes, Change{Object: d.Name, Setting: SettingRouteAction, Current: strconv.FormatInt(d.RouteAction, 10), New: strconv.FormatInt(n, 10),
			Why: "clear \"Allow incoming mail to be relayed to this domain\" (the operator asked to fix relay domains)"})
	}
}

func guestNotes(st IISState, p *Plan) {
	if st.Guest != nil && st.Guest.Enabled {
		p.Notes = append(p.Notes, "the local Guest account ("+st.Guest.Name+") is enabled: disable it (relaylock does not change accounts)")
	}
	if st.ServiceLevel != nil {
		if l, err := st.ServiceLevel.RelayIpList.Decode(); err == nil && l.IsOpenToAll() {
			p.Notes = append(p.Notes, st.ServiceLevel.Name+" (service level) RelayIpList is open ("+l.Describe()+"); virtual servers created later inherit it (not changed)")
		}
	}
}

// Plan implements Driver.
func (IISDriver) Plan(insp *Inspection, req Request) (*Plan, error) {
	var st IISState
	if err := json.Unmarshal(insp.State, &st); err != nil {
		return nil, fmt.Errorf("plan: inspection state: %w", err)
	}
	p := &Plan{Host: insp.Host, Platform: PlatformIIS, Changes: []Change{}}
	var d IISDesired
	why := allowWhy(req)
	for _, vs := range st.Servers {
		// Plan against the server's own value: the plan writes a value on
		// the server, which overrides an inherited one. ADSI and relaylock
		// are compared on the value the server enforces.
		if !req.Force {
			if mm := st.adsiMismatchOf(vs); mm != "" {
				return nil, fmt.Errorf("plan %s: %w: IIS (ADSI) reads the relay list differently from relaylock (%s); not writing hand-built bytes: %w", vs.Name, ErrRelayList, mm, ErrRefusedUnlessForced)
			}
		}
		want, wantRFA, ch, notes, err := planRelay(st.relayTargetOf(vs), req, why)
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", vs.Name, err)
		}
		if want.Null && st.ServiceLevel != nil && !st.ServiceLevel.RelayIpList.Null {
			return nil, fmt.Errorf("plan %s: clearing RelayIpList would inherit %s's value (%s); give at least one --allow address or drop --no-loopback", vs.Name, st.ServiceLevel.Name, DescribeBlob(st.ServiceLevel.RelayIpList))
		}
		p.Notes = append(p.Notes, notes...)
		if len(ch) > 0 {
			p.Changes = append(p.Changes, ch...)
			d.Servers = append(d.Servers, IISServerWrite{Name: vs.Name, RelayIpList: want, RelayForAuth: wantRFA})
			if vs.RelayIpListFrom == RelayFromUnknown {
				p.Notes = append(p.Notes, vs.Name+": whether its RelayIpList is its own or inherited from "+st.ServiceLevel.Name+" is unknown (IIS ADSI did not say); a rollback writes the saved value onto the server, so it stops following later changes of "+st.ServiceLevel.Name)
			}
		}
	}
	planDomains(st, req, p, &d.Domains)
	guestNotes(st, p)
	var err error
	if p.Desired, err = json.Marshal(d); err != nil {
		return nil, err
	}
	return p, nil
}

func iisWriteParams(w IISServerWrite) map[string]string {
	return map[string]string{"server": w.Name, "relayiplist": w.RelayIpList.String(), "relayforauth": strconv.FormatInt(w.RelayForAuth, 10)}
}

// writeServer runs iis-write and checks the values it read back.
func writeServer(ctx context.Context, r Runner, host string, w IISServerWrite) error {
	out, err := runScript(ctx, r, host, ScriptIISWrite, iisWriteParams(w), nil)
	if err != nil {
		return fmt.Errorf("write %s: %w", w.Name, err)
	}
	// The read-back is decoded as iis-read's is, so that a NULL written
	// (the server inherits again) reads back as NULL however WMI shows it.
	back, err := DecodeIISState(out)
	if err != nil {
		return fmt.Errorf("write %s: read-back: %w", w.Name, err)
	}
	if len(back.Servers) != 1 {
		return fmt.Errorf("write %s: the script reported no read-back", w.Name)
	}
	got := back.Servers[0]
	if got.Name != w.Name || !got.RelayIpList.Equal(w.RelayIpList) || got.RelayForAuth != w.RelayForAuth {
		return fmt.Errorf("write %s: read back RelayIpList %s RelayForAuth %d, wrote %s and %d", w.Name, got.RelayIpList, got.RelayForAuth, w.RelayIpList, w.RelayForAuth)
	}
	return nil
}

func writeDomain(ctx context.Context, r Runner, host string, w IISDomainWrite) error {
	out, err := runScript(ctx, r, host, ScriptIISWriteDomain, map[string]string{"domain": w.Name, "routeaction": strconv.FormatInt(w.RouteAction, 10)}, nil)
	if err != nil {
		return fmt.Errorf("write %s: %w", w.Name, err)
	}
	rec, ok := out.First(iisRecDomain)
	if !ok {
		return fmt.Errorf("write %s: the script reported no read-back", w.Name)
	}
	got, err := decodeDomain(rec)
	if err != nil {
		return fmt.Errorf("write %s: read-back: %w", w.Name, err)
	}
	if got.Name != w.Name || got.RouteAction != w.RouteAction {
		return fmt.Errorf("write %s: read back RouteAction %d, wrote %d", w.Name, got.RouteAction, w.RouteAction)
	}
	return nil
}

func changesOf(p *Plan, object string) []Change {
	var cs []Change
	for _, c := range p.Changes {
		if c.Object == object {
			cs = append(cs, c)
		}
	}
	return cs
}

// Apply implements Driver.
func (IISDriver) Apply(ctx context.Context, r Runner, plan *Plan) ([]Change, error) {
	var d IISDesired
	if err := json.Unmarshal(plan.Desired, &d); err != nil {
		return nil, fmt.Errorf("apply: plan: %w", err)
	}
	var applied []Change
	for _, w := range d.Servers {
		if err := writeServer(ctx, r, plan.Host, w); err != nil {
			return applied, err
		}
		applied = append(applied, changesOf(plan, w.Name)...)
	}
	for _, w := range d.Domains {
		if err := writeDomain(ctx, r, plan.Host, w); err != nil {
			return applied, err
		}
		applied = append(applied, changesOf(plan, w.Name)...)
	}
	return applied, nil
}

func backupState(b *Backup) (IISState, error) {
	var st IISState
	if b == nil || b.Inspection == nil || b.Plan == nil {
		return st, errors.New("restore: backup lacks the inspection or the plan")
	}
	if err := json.Unmarshal(b.Inspection.State, &st); err != nil {
		return st, fmt.Errorf("restore: backup state: %w", err)
	}
	return st, nil
}

// Restore implements Driver: it writes back the saved values (the exact
// RelayIpList bytes, null and zero-length included) of every object the
// plan touches. Restoring a null RelayIpList assigns $null and calls Put
// (UNVERIFIED on real IIS; ADSI PutEx(1 /*ADS_PROPERTY_CLEAR*/) is the
// untested alternative, see iis-write.ps1).
func (IISDriver) Restore(ctx context.Context, r Runner, b *Backup) error {
	st, err := backupState(b)
	if err != nil {
		return err
	}
	var d IISDesired
	if err := json.Unmarshal(b.Plan.Desired, &d); err != nil {
		return fmt.Errorf("restore: plan: %w", err)
	}
	var errs []error
	for _, w := range d.Servers {
		vs, ok := st.Server(w.Name)
		if !ok {
			errs = append(errs, fmt.Errorf("restore %s: not in the backup", w.Name))
			continue
		}
		if err := writeServer(ctx, r, b.Host, IISServerWrite{Name: vs.Name, RelayIpList: vs.RelayIpList, RelayForAuth: vs.RelayForAuth}); err != nil {
			errs = append(errs, fmt.Errorf("restore: %w", err))
		}
	}
	for _, w := range d.Domains {
		found := false
		for _, dm := range st.Domains {
			if dm.Name == w.Name {
				found = true
				if err := writeDomain(ctx, r, b.Host, IISDomainWrite{Name: dm.Name, RouteAction: dm.RouteAction}); err != nil {
					errs = append(errs, fmt.Errorf("restore: %w", err))
				}
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("restore %s: not in the backup", w.Name))
		}
	}
	return errors.Join(errs...)
}
