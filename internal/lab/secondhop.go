package lab

// The second hop, as strict as Windows (issue 14 §1). A WinRS process
// runs under a network logon: NTLM and Basic cannot delegate, and the
// lab has no Kerberos (so no delegation either), so the simulated process
// holds no network credentials. A script that reaches Active Directory or
// the Exchange shell without an explicit credential fails with the error
// Windows reports for the double hop; one with a wrong credential fails
// with the logon error. Only a credential of the lab's directory account,
// passed as data in the payload (remediate.AddHopParams), gets through.
//
// The texts are those reported for the double hop on English hosts:
// ADSI's 0x80072020 "An operations error occurred." (the bind fell back
// to anonymous, which may read RootDSE only), Exchange's
// ADOperationException wrapping the same LDAP error, and WinRM's Kerberos
// 0x8009030e "A specified logon session does not exist." for a remote
// session. relaylock classifies them by HRESULT, not by text.

import (
	"strings"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// Directory is the simulated domain's account for the second hop: the
// one credential AD and the Exchange shell accept. The WS-Man face uses
// its own account (Config.User / Password); DirectRunner uses
// DefaultDirectory.
type Directory struct {
	User, Password string
	// ForeignDCs are domain controllers that answer LDAP but do not
	// accept this account (another domain's, without a trust): a bind to
	// one of them with the explicit credential fails with the logon
	// error.
	ForeignDCs []string
}

// LabNetBIOSDomain is the NetBIOS name of the simulated AD domain
// (LabExchangeDomain).
const LabNetBIOSDomain = "CORP"

// isDomainAccount reports whether a configured account name is a domain
// account ("DOMAIN\name" or "name@domain"); a bare name is a local
// account of the host.
func isDomainAccount(user string) bool {
	return strings.Contains(user, `\`) || strings.Contains(user, "@")
}

// directoryFor is the second-hop directory of a host whose one account
// is user/password: that account when it is a domain account; none (AD
// refuses everyone) when it is local.
func directoryFor(user, password string) Directory {
	if !isDomainAccount(user) {
		return Directory{}
	}
	return Directory{User: user, Password: password}
}

// DefaultDirectory is the directory account of the DirectRunner, which
// also sends it as the explicit credential unless told otherwise.
var DefaultDirectory = Directory{User: `CORP\relaylock-admin`, Password: "Lab-Directory-Account-2026"}

// accepts reports whether user/password is the directory account: names
// compare case-insensitively, a domain (DOMAIN\ or @domain) on either
// side may be absent, and when both carry one they must agree (NetBIOS
// or DNS form of the lab domain).
func (d Directory) accepts(user, password string) bool {
	if d.User == "" || password != d.Password {
		return false
	}
	split := func(s string) (dom, name string) {
		if a, b, ok := strings.Cut(s, `\`); ok {
			return a, b
		}
		if a, b, ok := strings.Cut(s, "@"); ok {
			return b, a
		}
		return "", s
	}
	wd, wn := split(d.User)
	gd, gn := split(user)
	if !strings.EqualFold(wn, gn) {
		return false
	}
	norm := func(s string) string {
		s = strings.ToLower(s)
		if s == strings.ToLower(LabExchangeDomain) {
			return strings.ToLower(LabNetBIOSDomain)
		}
		return s
	}
	return wd == "" || gd == "" || norm(wd) == norm(gd)
}

// hopOutcome is how a script's second hop went.
type hopOutcome int

const (
	hopNone     hopOutcome = iota // no explicit credential: the process's own token
	hopRefused                    // an explicit credential the directory refuses
	hopExplicit                   // the directory account, explicitly
)

// HopHandler is a Host whose answers depend on how a script crossed the
// second hop (the Exchange loader reports "remote-explicit" then).
// Dispatch calls HandleHop instead of Handle for hop scripts that got
// through.
type HopHandler interface {
	HandleHop(script string, params map[string]string, explicit bool) (recs []psframe.Record, code int, stderr string)
}

// splitHop takes the hop credential out of params (the host never sees
// it) and judges it against dir.
func splitHop(params map[string]string, dir Directory) (map[string]string, hopOutcome) {
	user, hasUser := params[remediate.HopUserParam]
	pass, hasPass := params[remediate.HopPasswordParam]
	clean := make(map[string]string, len(params))
	for k, v := range params {
		if k != remediate.HopUserParam && k != remediate.HopPasswordParam {
			clean[k] = v
		}
	}
	switch {
	case !hasUser && !hasPass, user == "" && pass == "":
		return clean, hopNone
	case dir.accepts(user, pass):
		return clean, hopExplicit
	}
	return clean, hopRefused
}

// needsHop reports whether script, on a host with info, must cross the
// second hop. IIS SMTP never does; an Edge server's AD LDS is local.
func needsHop(info remediate.HostInfo, script string) bool {
	if !remediate.ScriptNeedsHop(script) {
		return false
	}
	switch info.Platform {
	case remediate.PlatformExchange2003:
		return true
	case remediate.PlatformExchange:
		for _, r := range info.ExchangeRoles {
			if strings.EqualFold(r, "EdgeTransport") || strings.EqualFold(r, "Edge") {
				return false
			}
		}
		return true
	}
	return false
}

// Windows' answers for a failed second hop.
const (
	hrOperationsError = "0x80072020" // ERROR_DS_OPERATIONS_ERROR: the bind fell back to anonymous
	hrLogonFailure    = "0x8007052E" // ERROR_LOGON_FAILURE
	hrNoLogonSession  = "0x8009030E" // SEC_E_NO_CREDENTIALS / no logon session (WinRM Kerberos client)
	msgOperationsErr  = "An operations error occurred.\r\n"
	msgLogonFailure   = "The user name or password is incorrect.\r\n"
	msgServerDown     = "The server is not operational.\r\n" // ERROR_DS_SERVER_DOWN
	typeDSCOM         = "System.DirectoryServices.DirectoryServicesCOMException"
	typeADOperation   = "Microsoft.Exchange.Data.Directory.ADOperationException"
	typePSRemoting    = "System.Management.Automation.Remoting.PSRemotingTransportException"
	ldapBindComment   = "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be completed on the connection., data 0, v4563"
)

func remotingNoCredentials(uri string) string {
	return "Connecting to remote server " + strings.TrimSuffix(strings.TrimPrefix(uri, "http://"), "/PowerShell/") +
		" failed with the following error message : WinRM cannot process the request. The following error with errorcode 0x8009030e occurred while using Kerberos authentication: A specified logon session does not exist. It may already have been terminated. " +
		"Possible causes are:\r\n  -The user name or password specified are invalid.\r\n  -Kerberos is used when no authentication method and no user name are specified.\r\n  -Kerberos accepts domain user names, but not local user names.\r\n" +
		"For more information, see the about_Remote_Troubleshooting Help topic."
}

func remotingAccessDenied(uri string) string {
	return "Connecting to remote server " + strings.TrimSuffix(strings.TrimPrefix(uri, "http://"), "/PowerShell/") +
		" failed with the following error message : Access is denied. For more information, see the about_Remote_Troubleshooting Help topic."
}

func adOperationFailed(extra string) string {
	return "Active Directory operation failed on " + labDC + ". This error is not retriable. Additional information: " + extra
}

// onDC is hop-check's " on domain controller DC" for a named DC.
func onDC(params map[string]string) string {
	if dc := params[remediate.DomainControllerParam]; dc != "" {
		return " on domain controller " + dc
	}
	return ""
}

// hopFailure answers a hop script that did not get through (o is
// hopNone or hopRefused), as the real script prints it.
func hopFailure(info remediate.HostInfo, script string, params map[string]string, o hopOutcome) ([]psframe.Record, int) {
	explicit := "False"
	if o == hopRefused {
		explicit = "True"
	}
	ldapMsg, ldapHR := msgOperationsErr, hrOperationsError
	if o == hopRefused {
		ldapMsg, ldapHR = msgLogonFailure, hrLogonFailure
	}
	uri := "http://" + strings.ToLower(info.ComputerName+"."+info.Domain) + "/PowerShell/"
	is2007 := info.ExchangeVersion == "2007"
	switch script {
	case remediate.HopCheckScript:
		rec := psframe.NewRecord("hoperror").Set("explicit", explicit)
		switch params["target"] {
		case "exchange":
			msg, hr := remotingNoCredentials(uri), hrNoLogonSession
			if o == hopRefused {
				msg, hr = remotingAccessDenied(uri), ""
			}
			rec.Set("what", "the Exchange shell ("+uri+")").Set("message", msg).Set("type", typePSRemoting).Set("hresult", hr)
		case "exchange2007":
			rec.Set("what", "Active Directory (LDAP"+onDC(params)+", as the Exchange 2007 snap-in will)").Set("message", ldapMsg).Set("type", typeDSCOM).Set("hresult", ldapHR)
		default:
			rec.Set("what", "Active Directory (LDAP"+onDC(params)+")").Set("message", ldapMsg).Set("type", typeDSCOM).Set("hresult", ldapHR)
		}
		return []psframe.Record{*rec}, 6
	case remediate.ScriptEx2003ReadAD, remediate.ScriptEx2003WriteAD:
		return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).Set("message", ldapMsg).Set("type", typeDSCOM).
			Set("hresult", ldapHR).Set("kind", "ad-unavailable")}, 5
	}
	// exchange-read / exchange-write: the loader.
	var recs []psframe.Record
	if !is2007 && o == hopRefused {
		// 2010+ with a refused explicit credential: New-PSSession fails.
		step := "New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri " + uri + " -Authentication Kerberos -Credential " + params[remediate.HopUserParam]
		return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).
			Set("message", "Exchange Management Shell could not be loaded: "+step+": "+remotingAccessDenied(uri)).
			Set("type", typePSRemoting).Set("hresult", "").Set("kind", "load").Set("explicit", explicit)}, 3
	}
	if !is2007 {
		// 2010+ without a credential: Connect-ExchangeServer fails, the
		// loader falls back to the snap-in, whose AD read then fails.
		snap := "Microsoft.Exchange.Management.PowerShell.SnapIn"
		if info.ExchangeVersion == "2010" {
			snap = "Microsoft.Exchange.Management.PowerShell.E2010"
		}
		recs = append(recs, *psframe.NewRecord("warning").Set("message", "Connect-ExchangeServer failed ("+remotingNoCredentials(uri)+"); loaded the local snap-in "+snap+
			" instead, which Microsoft supports for *-TransportAgent cmdlets only: relaylock reads through it but refuses to write through it unless --force"))
	}
	extra := "An operations error occurred. Active directory response: " + ldapBindComment
	if o == hopRefused {
		extra = "The user name or password is incorrect."
	}
	recs = append(recs, *psframe.NewRecord(psframe.ErrorRecord).
		Set("message", "Exchange Management Shell could not be loaded: the shell loaded but cannot read Active Directory (Get-ExchangeServer): "+adOperationFailed(extra)).
		Set("type", typeADOperation).Set("hresult", ldapHR).Set("kind", "ad").Set("explicit", explicit))
	return recs, 3
}

// hopSuccess answers hop-check for a credential that got through; dc is
// the domain controller whose RootDSE answered the AD bind.
func hopSuccess(params map[string]string, dc string) []psframe.Record {
	rec := psframe.NewRecord("hop").Set("explicit", "True")
	switch params["target"] {
	case "exchange":
		rec.Set("method", "remote-explicit").Set("dc", "")
	case "exchange2007":
		rec.Set("method", "netonly").Set("dc", dc)
	default:
		rec.Set("method", "ldap-explicit").Set("dc", dc)
	}
	return []psframe.Record{*rec}
}

// domainControllers is a Host whose domain has named domain controllers.
type domainControllers interface {
	// siteDC is the DC a serverless bind (LDAP://RootDSE) reaches: the
	// DC locator's choice for the host's site.
	siteDC() string
	// findDC returns the DC of the domain called name (DNS name or first
	// label), if there is one.
	findDC(name string) (string, bool)
}

// bindDC is hop-check's AD bind: to the named domain controller dc, or
// serverless. It returns the DC that answers, or, for a bind that fails
// before the credential matters, the script's answer: a DC the domain
// does not have (or that does not answer) is "The server is not
// operational." (0x8007203A) whatever the credential; a DC that does not
// accept the explicit credential (Directory.ForeignDCs) is the logon
// error (0x8007052E).
func (h *hopHost) bindDC(dc string, o hopOutcome) (string, []psframe.Record, int) {
	dcs, ok := h.Host.(domainControllers)
	if !ok {
		return labDC, nil, 0
	}
	if dc == "" {
		return dcs.siteDC(), nil, 0
	}
	name, ok := dcs.findDC(dc)
	explicit := detectBoolText(o != hopNone)
	what := "Active Directory (LDAP on domain controller " + dc + ")"
	switch {
	case !ok:
		return "", []psframe.Record{*psframe.NewRecord("hoperror").Set("what", what).Set("message", msgServerDown).
			Set("type", typeDSCOM).Set("hresult", remediate.HResultServerDown).Set("explicit", explicit)}, 6
	case o == hopExplicit && containsFold(h.dir.ForeignDCs, name):
		return "", []psframe.Record{*psframe.NewRecord("hoperror").Set("what", what).Set("message", msgLogonFailure).
			Set("type", typeDSCOM).Set("hresult", hrLogonFailure).Set("explicit", explicit)}, 6
	}
	return name, nil, 0
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// siteDC implements domainControllers: the first DC (labDC unless
// AddDomainController changed the list) serves the site.
func (h *ExchangeHost) siteDC() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.dcs) == 0 {
		return labDC
	}
	return h.dcs[0]
}

func (h *ExchangeHost) findDC(name string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	dcs := h.dcs
	if len(dcs) == 0 {
		dcs = []string{labDC}
	}
	for _, d := range dcs {
		short, _, _ := strings.Cut(d, ".")
		if strings.EqualFold(name, d) || strings.EqualFold(name, short) {
			return d, true
		}
	}
	return "", false
}

// siteDC implements domainControllers: the locator's DC
// (Ex2003OtherDC), not necessarily the one DS2MB reads.
func (h *Ex2003Host) siteDC() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dcs[h.locator].name
}

func (h *Ex2003Host) findDC(name string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i := h.dcIndex(name); i >= 0 {
		return h.dcs[i].name, true
	}
	return "", false
}

// hopHost is a Host behind the second hop: scripts that reach AD or the
// Exchange shell (remediate.ScriptNeedsHop) on an Exchange host get
// through only with an explicit credential of dir in their parameters,
// which is taken out before the host sees them; without one they fail
// as on Windows. The WS-Man face and DirectRunner put every host behind
// one, so the strict second hop is the lab's default.
type hopHost struct {
	Host
	dir Directory
}

// withDirectory puts h behind the second hop with directory account dir.
func withDirectory(h Host, dir Directory) Host {
	if hh, ok := h.(*hopHost); ok {
		h = hh.Host
	}
	return &hopHost{Host: h, dir: dir}
}

// Handle implements Host.
func (h *hopHost) Handle(script string, params map[string]string) ([]psframe.Record, int, string) {
	info := h.Host.HostInfo()
	if !needsHop(info, script) {
		return h.Host.Handle(script, params)
	}
	clean, o := splitHop(params, h.dir)
	if script == remediate.HopCheckScript {
		names := []string{"target"}
		if _, ok := clean[remediate.DomainControllerParam]; ok {
			names = append(names, remediate.DomainControllerParam) // optional
		}
		if err := checkParams(clean, names...); err != nil {
			return errorRecord(err.Error(), "bad-parameter"), 1, ""
		}
		if !reDCName.MatchString(clean[remediate.DomainControllerParam]) {
			return errorRecord("parameter dc is not a host name", "bad-parameter"), 2, ""
		}
		switch clean["target"] {
		case "ad", "exchange2007", "exchange":
		default:
			return errorRecord("parameter target is not ad, exchange2007 or exchange", "bad-parameter"), 2, ""
		}
	}
	named := ""
	if script == remediate.HopCheckScript && clean["target"] != "exchange" {
		// The AD bind: on the named DC (LDAP://DC/...) or serverless.
		var recs []psframe.Record
		var code int
		if named, recs, code = h.bindDC(clean[remediate.DomainControllerParam], o); recs != nil {
			return recs, code, ""
		}
	}
	if o != hopExplicit {
		recs, code := hopFailure(info, script, params, o)
		return recs, code, ""
	}
	if script == remediate.HopCheckScript {
		return hopSuccess(clean, named), 0, ""
	}
	if hh, ok := h.Host.(HopHandler); ok {
		return hh.HandleHop(script, clean, true)
	}
	return h.Host.Handle(script, clean)
}
