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

// This file is the IIS 6 SMTP driver (docs/windows-relay.md §1). The settings
// live in the IIS metabase and are read and written through WMI
// (root\MicrosoftIISv2), which needs the "IIS 6 WMI Compatibility" feature
// (Web-WMI).
//
// Contract between scripts and driver: the records the scripts iis-read,
// iis-write and iis-write-domain print are read by the decoders in
// iis_scripts.go. The lab (internal/lab) builds them with its own code,
// written from the scripts, and reads RelayIpList with its own codec, so a
// driver bug cannot hide behind the same bug in the lab. Records:
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

// errorKindFeatureMissing is the "kind" of an error record that says a
// Windows feature is missing; its "feature" field names it.
const errorKindFeatureMissing = "feature-missing"

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
func (d IISDomain) RelayAllowed() bool { return d.RouteAction&routeActionDomainRelay != 0 }

// VirtualServerOf returns the virtual server a domain object belongs to
// ("SmtpSvc/1" for "SmtpSvc/1/Domain/x").
func (d IISDomain) VirtualServerOf() string {
	if i := strings.Index(d.Name, "/Domain/"); i >= 0 {
		return d.Name[:i]
	}
	return ""
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
			case errorKindFeatureMissing:
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
