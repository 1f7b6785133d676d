// Package doctor checks, read-only, what relaylock needs on one Windows
// host before it reads or changes anything there: the WinRM listener and
// its certificate, the authentication the host offers, that a command
// runs, the PowerShell version, a 200 KB stdin round trip, the WinRM
// quotas, the IIS 6 compatibility features, the second hop to Active
// Directory, and that the Exchange shell loads. Each check passes, fails
// (with the fix) or is skipped (not relevant to the platform, or blocked
// by an earlier failure). It is what a consultant runs first at a new
// client, and what a bug report from the field should contain.
//
// Nothing here writes to the host: the scripts it runs are detect,
// doctor and the platform driver's read (Driver.Inspect).
package doctor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// Status of one check.
type Status string

// Statuses.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Check IDs, in the order they run.
const (
	CheckListener    = "listener"
	CheckCertificate = "certificate"
	CheckAuth        = "auth"
	CheckLogin       = "login"
	CheckPowerShell  = "powershell"
	CheckStdin       = "stdin"
	CheckMemoryQuota = "quota-memory"
	CheckEnvelope    = "quota-envelope"
	CheckWebWMI      = "web-wmi"
	CheckMetabase    = "metabase"
	CheckSecondHop   = "second-hop"
	CheckExchange    = "exchange-shell"
)

// Check is the result of one check.
type Check struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Fix says what to change on the host (or in relaylock's flags) when
	// the check failed.
	Fix string `json:"fix,omitempty"`
}

// Report is the result of a doctor run.
type Report struct {
	Host     string              `json:"host"`
	Endpoint string              `json:"endpoint"`
	Auth     string              `json:"auth"`
	User     string              `json:"user,omitempty"`
	Time     time.Time           `json:"time"`
	HostInfo *remediate.HostInfo `json:"host_info,omitempty"`
	Checks   []Check             `json:"checks"`
}

// Failed counts the failed checks.
func (r *Report) Failed() int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == Fail {
			n++
		}
	}
	return n
}

// Get returns the check with id.
func (r *Report) Get(id string) (Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// StdinSize is the size of the stdin round trip: larger than one WinRS
// Send (relaylock sends at most ~100 KiB per Send), as large as relaylock's
// biggest script payloads.
const StdinSize = 200_000

// MinMemoryPerShellMBExchange is the MaxMemoryPerShellMB doctor wants
// before loading the Exchange shell in a WinRS process (WinRM 2.0's
// default, 150, ends heavy shells). How much the Exchange shell needs is
// UNVERIFIED (see remediate.UnverifiedFacts); 1024 is WinRM 3.0's default.
const MinMemoryPerShellMBExchange = 1024

// MinEnvelopeSizekb is the smallest MaxEnvelopeSizekb relaylock's Sends fit
// in (a full Send is ~136 KB on the wire).
const MinEnvelopeSizekb = 150

// Options configure Run.
type Options struct {
	// Config is the WinRM configuration (WithDefaults applied).
	Config remediate.WinRMConfig
	// Runner runs the scripts; nil builds a remediate.WinRMRunner from
	// Config.
	Runner remediate.Runner
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Run runs every check against the host. It returns an error only for an
// unusable configuration; failures on the host are failed checks.
func Run(ctx context.Context, o Options) (*Report, error) {
	cfg := o.Config.WithDefaults()
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	r := o.Runner
	if r == nil {
		wr, _, err := remediate.NewWinRMRunner(cfg)
		if err != nil {
			return nil, err
		}
		defer wr.Close()
		r = wr
	}
	rep := &Report{Host: cfg.Host, Endpoint: cfg.URL(), Auth: cfg.Auth, User: cfg.User, Time: now().UTC()}
	d := &run{ctx: ctx, cfg: cfg, r: r, rep: rep}
	d.listener()
	if d.reachable {
		d.auth()
		d.login()
	} else {
		d.skip("host not reachable", CheckAuth, CheckLogin)
	}
	if d.info != nil {
		d.powershell()
		d.doctorScript()
		d.platform()
	} else {
		d.skip("no command ran on the host", CheckPowerShell, CheckStdin, CheckMemoryQuota, CheckEnvelope, CheckWebWMI, CheckMetabase, CheckSecondHop, CheckExchange)
	}
	return rep, nil
}

type run struct {
	ctx       context.Context
	cfg       remediate.WinRMConfig
	r         remediate.Runner
	rep       *Report
	reachable bool
	info      *remediate.HostInfo
	out       *psframe.Output // doctor.ps1's records
}

func (d *run) add(id string, st Status, detail, fix string) {
	if st != Fail {
		fix = ""
	}
	d.rep.Checks = append(d.rep.Checks, Check{ID: id, Status: st, Detail: detail, Fix: fix})
}

func (d *run) skip(why string, ids ...string) {
	for _, id := range ids {
		d.add(id, Skip, why, "")
	}
}

// listener: TCP, then TLS with relaylock's own verification.
func (d *run) listener() {
	hp := net.JoinHostPort(d.cfg.Host, strconv.Itoa(d.cfg.Port))
	dctx, cancel := context.WithTimeout(d.ctx, d.cfg.ConnectTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", hp)
	if err != nil {
		port := "5985 (HTTP)"
		if d.cfg.HTTPS {
			port = "5986 (HTTPS)"
		}
		d.add(CheckListener, Fail, fmt.Sprintf("no WinRM listener answers at %s: %v", hp, err),
			"on the host: winrm quickconfig"+map[bool]string{true: " -transport:https (needs a server authentication certificate for the host's name)", false: ""}[d.cfg.HTTPS]+
				"; open TCP "+port+" in Windows Firewall; check --winrm-host/--winrm-port")
		d.skip("no listener", CheckCertificate)
		return
	}
	d.reachable = true
	if !d.cfg.HTTPS {
		conn.Close()
		d.add(CheckListener, Pass, "WinRM HTTP listener at "+hp, "")
		note := "plain HTTP: messages are sealed with NTLM (message encryption)"
		if d.cfg.AllowUnencrypted || d.cfg.Auth != remediate.AuthNTLM {
			note = "plain HTTP without encryption (--winrm-allow-unencrypted): commands and output travel in clear text"
		}
		d.add(CheckCertificate, Skip, note, "")
		return
	}
	d.add(CheckListener, Pass, "WinRM HTTPS listener at "+hp, "")
	tc, err := d.cfg.TLSClientConfig()
	if err != nil {
		conn.Close()
		d.add(CheckCertificate, Fail, err.Error(), "fix --winrm-ca")
		return
	}
	if tc.ServerName == "" {
		tc.ServerName = d.cfg.Host
	}
	tconn := tls.Client(conn, tc)
	_ = tconn.SetDeadline(time.Now().Add(d.cfg.ConnectTimeout))
	err = tconn.HandshakeContext(dctx)
	defer tconn.Close()
	if err != nil {
		fix := "give relaylock the CA that issued the listener's certificate (--winrm-ca FILE), or the name in the certificate (--winrm-server-name NAME); " +
			"or bind a certificate for the host's name: winrm create winrm/config/Listener?Address=*+Transport=HTTPS @{Hostname=\"NAME\";CertificateThumbprint=\"...\"}"
		var ua x509.UnknownAuthorityError
		var hn x509.HostnameError
		var ci x509.CertificateInvalidError
		switch {
		case errors.As(err, &hn):
			fix = "connect with the name in the certificate (--winrm-server-name " + strings.Join(hn.Certificate.DNSNames, " or ") + "), or replace the certificate with one for " + d.cfg.Host
		case errors.As(err, &ci):
			fix = "the listener's certificate is not valid (" + ci.Error() + "): renew it and bind it to the HTTPS listener"
		case errors.As(err, &ua):
		case remediate.TLSVersionMismatch(err):
			fix = "the host offers only old TLS (Windows 2003/2008): pass --winrm-legacy-tls, or enable TLS 1.2 on the host"
		}
		d.add(CheckCertificate, Fail, "TLS handshake with "+hp+" failed: "+err.Error(), fix)
		return
	}
	cs := tconn.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		d.add(CheckCertificate, Fail, "the host sent no certificate", "bind a certificate to the HTTPS listener")
		return
	}
	c := cs.PeerCertificates[0]
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	detail := fmt.Sprintf("%s, subject %q, names %s, issuer %q, valid until %s", tls.VersionName(cs.Version), c.Subject.CommonName,
		strings.Join(names, ","), c.Issuer.CommonName, c.NotAfter.UTC().Format("2006-01-02"))
	if d.cfg.Insecure {
		d.add(CheckCertificate, Fail, detail+"; NOT verified (--winrm-insecure)", "drop --winrm-insecure and pass --winrm-ca with the issuing CA")
		return
	}
	if left := time.Until(c.NotAfter); left < 30*24*time.Hour {
		detail += fmt.Sprintf(" (expires in %d days)", int(left.Hours()/24))
	}
	d.add(CheckCertificate, Pass, "verified: "+detail, "")
}

// auth: what an unauthenticated request is told (WWW-Authenticate of the
// 401, RFC 9110 §11.6.1).
func (d *run) auth() {
	if d.cfg.Auth == remediate.AuthCertificate {
		d.add(CheckAuth, Skip, "certificate authentication is negotiated in TLS", "")
		return
	}
	tc, err := d.cfg.TLSClientConfig()
	if err != nil {
		d.add(CheckAuth, Skip, err.Error(), "")
		return
	}
	tr := &http.Transport{Proxy: nil, TLSClientConfig: tc, TLSHandshakeTimeout: d.cfg.ConnectTimeout}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.ConnectTimeout+15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.URL(), strings.NewReader(""))
	if err != nil {
		d.add(CheckAuth, Skip, err.Error(), "")
		return
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.Header.Set("User-Agent", "relaylock-doctor")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		d.add(CheckAuth, Skip, "no HTTP answer: "+err.Error(), "")
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		d.add(CheckAuth, Fail, fmt.Sprintf("an unauthenticated request got HTTP %d, not 401: this is not a Windows WinRM listener, or it lets anyone in", resp.StatusCode),
			"check --winrm-host/--winrm-port point at the WinRM listener (/wsman)")
		return
	}
	offered := remediate.AuthSchemes(resp.Header)
	want := map[string][]string{
		remediate.AuthNTLM:     {"Negotiate", "NTLM"},
		remediate.AuthKerberos: {"Negotiate", "Kerberos"},
		remediate.AuthBasic:    {"Basic"},
	}[d.cfg.Auth]
	detail := "the host offers " + strings.Join(offered, ", ")
	if len(offered) == 0 {
		detail = "the host's 401 names no authentication scheme"
	}
	for _, w := range want {
		for _, o := range offered {
			if strings.EqualFold(w, o) {
				if d.cfg.Auth == remediate.AuthBasic && domainAccount(d.cfg.User) {
					d.add(CheckAuth, Fail, detail+"; but "+basicDomainWhy(d.cfg.User), basicDomainFix)
					return
				}
				d.add(CheckAuth, Pass, detail+"; relaylock uses "+d.cfg.Auth+" ("+o+")", "")
				return
			}
		}
	}
	fix := map[string]string{
		remediate.AuthNTLM:     `on the host: winrm set winrm/config/service/auth @{Negotiate="true"}`,
		remediate.AuthKerberos: `on the host: winrm set winrm/config/service/auth @{Kerberos="true"}; or use --winrm-auth ntlm`,
		remediate.AuthBasic:    `prefer --winrm-auth ntlm; Basic needs winrm set winrm/config/service/auth @{Basic="true"} and a local account`,
	}[d.cfg.Auth]
	d.add(CheckAuth, Fail, detail+"; relaylock is set to "+d.cfg.Auth, fix)
}

// domainAccount reports whether a --winrm-user names a domain account
// (DOMAIN\user or user@domain) rather than a local one (user, .\user).
func domainAccount(user string) bool {
	if d, _, ok := strings.Cut(user, `\`); ok {
		return d != "."
	}
	return strings.Contains(user, "@")
}

// basicDomainWhy says why a domain account cannot log on with Basic:
// WinRM's Basic authentication takes local accounts only (Microsoft,
// "Authentication for Remote Connections"); the host answers it with the
// same 401 as a wrong password.
func basicDomainWhy(user string) string {
	return "WinRM Basic authentication logs on local accounts only, and " + user + " is a domain account: Windows refuses it with 401 whatever the password"
}

const basicDomainFix = "use --winrm-auth ntlm (or kerberos) with the domain account; or, for IIS only, a local administrator account (no DOMAIN\\) with Basic: Exchange needs a domain account for the second hop"

// login: the detect script runs (credentials accepted, allowed to run
// commands).
func (d *run) login() {
	info, _, err := remediate.Detect(d.ctx, d.r)
	if err != nil && info.ComputerName == "" {
		fix := "see the error"
		switch {
		case errors.Is(err, remediate.ErrAuth) && d.cfg.Auth == remediate.AuthBasic && domainAccount(d.cfg.User):
			d.add(CheckLogin, Fail, "running relaylock's detect script failed: "+err.Error()+": "+basicDomainWhy(d.cfg.User), basicDomainFix)
			return
		case errors.Is(err, remediate.ErrAuth):
			fix = "check --winrm-user (DOMAIN\\user or user@REALM) and the password; a local account other than Administrator needs LocalAccountTokenFilterPolicy=1"
		case errors.Is(err, remediate.ErrAccessDenied):
			fix = "the account must be a local administrator of the host (and, for Exchange, Organization Management / Exchange Full Administrator)"
		case errors.Is(err, remediate.ErrTLS):
			fix = "see the certificate check"
		case errors.Is(err, psframe.ErrFrame):
			fix = "the host ran the command but printed no result: run 'powershell.exe -NoProfile -Command $PSVersionTable' on the host; a bug report with this output helps"
		}
		d.add(CheckLogin, Fail, "running relaylock's detect script failed: "+err.Error(), fix)
		return
	}
	d.info = &info
	d.rep.HostInfo = &info
	what := string(info.Platform)
	if info.ExchangeVersion != "" {
		what += " (Exchange " + info.ExchangeVersion + " " + info.ExchangeBuild + ")"
	}
	if err != nil {
		d.add(CheckLogin, Pass, fmt.Sprintf("commands run as %s on %s; but %v", d.cfg.User, info.ComputerName, err), "")
		return
	}
	d.add(CheckLogin, Pass, fmt.Sprintf("commands run as %s on %s, %s %s: %s", d.cfg.User, info.ComputerName, info.OSCaption, info.OSVersion, what), "")
}

func (d *run) powershell() {
	h := d.info
	maj, _, _ := strings.Cut(h.PSVersion, ".")
	n, _ := strconv.Atoi(maj)
	switch {
	case h.PSVersion == "" || n < 2:
		d.add(CheckPowerShell, Fail, "PowerShell "+firstNonEmpty(h.PSVersion, "1.0 or unknown")+": relaylock's scripts need 2.0 or later",
			"install Windows Management Framework 2.0 or later (KB 968929 for Windows 2003/2008)")
	case h.Platform == remediate.PlatformExchange && !h.Is64BitProcess:
		d.add(CheckPowerShell, Fail, "PowerShell "+h.PSVersion+" runs as a 32-bit process: the Exchange shell needs 64-bit",
			"WinRM starts the native powershell.exe; check that %SystemRoot%\\System32\\WindowsPowerShell is not redirected")
	case n == 2:
		d.add(CheckPowerShell, Pass, "PowerShell "+h.PSVersion+" (2.0: scripts arrive as $input over a pipe stdin, code page 437)", "")
	default:
		d.add(CheckPowerShell, Pass, "PowerShell "+h.PSVersion, "")
	}
}

// doctorScript runs doctor.ps1 with a 200 KB blob and reads its records.
func (d *run) doctorScript() {
	b := make([]byte, StdinSize*3/4)
	if _, err := rand.Read(b); err != nil {
		d.add(CheckStdin, Skip, err.Error(), "")
		return
	}
	blob := base64.StdEncoding.EncodeToString(b)[:StdinSize]
	sum := sha256.Sum256([]byte(blob))
	run, err := d.r.Run(d.ctx, "doctor", map[string]string{"blob": blob})
	if err != nil {
		fix := "see the error"
		if errors.Is(err, remediate.ErrEnvelopeTooLarge) {
			fix = fmt.Sprintf(`on the host: winrm set winrm/config @{MaxEnvelopeSizekb="500"} (at least %d)`, MinEnvelopeSizekb)
		}
		if errors.Is(err, psframe.ErrFrame) {
			fix = "the script did not receive its stdin: a bug report with `relaylock doctor --format json` output helps"
		}
		d.add(CheckStdin, Fail, fmt.Sprintf("a %d-byte stdin payload did not make the round trip: %v", StdinSize, err), fix)
		d.skip("the doctor script did not run", CheckMemoryQuota, CheckEnvelope, CheckWebWMI, CheckMetabase)
		return
	}
	d.out = run.Output
	echo, ok := d.out.First("echo")
	if !ok || echo.Str("sha256") != hex.EncodeToString(sum[:]) || echo.Str("length") != strconv.Itoa(StdinSize) {
		d.add(CheckStdin, Fail, fmt.Sprintf("the %d-byte payload arrived changed (length %s, sha256 %s)", StdinSize, echo.Str("length"), echo.Str("sha256")),
			"a bug report with `relaylock doctor --format json` output helps")
	} else {
		d.add(CheckStdin, Pass, fmt.Sprintf("%d bytes on stdin arrived intact (SHA-256 matches)", StdinSize), "")
	}
	d.quotas()
	d.features()
}

func (d *run) quota(name string) (int, string, bool) {
	for _, q := range d.out.Of("quota") {
		if q.Str("name") != name {
			continue
		}
		if v, ok := q.Get("value"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			return n, "", err == nil
		}
		return 0, q.Str("hresult"), false
	}
	return 0, "", false
}

func (d *run) quotas() {
	exchange := d.info.Platform == remediate.PlatformExchange
	mb, hr, ok := d.quota("MaxMemoryPerShellMB")
	switch {
	case !ok:
		d.add(CheckMemoryQuota, Skip, unreadable("MaxMemoryPerShellMB", hr), "")
	case exchange && mb < MinMemoryPerShellMBExchange:
		d.add(CheckMemoryQuota, Fail, fmt.Sprintf("MaxMemoryPerShellMB is %d: loading the Exchange shell in a WinRM shell can exceed it, and WinRM then ends the script", mb),
			memoryQuotaFix)
	default:
		d.add(CheckMemoryQuota, Pass, fmt.Sprintf("MaxMemoryPerShellMB is %d", mb), "")
	}
	if ok {
		// doctor.ps1 read the quota from the WSMan: drive: the later
		// checks name that value, not one detect could only assume.
		d.info.WinRSMaxMemoryMB, d.info.WinRSMaxMemorySource = mb, "wsman"
	}
	if kb, hr, ok := d.quota("MaxEnvelopeSizekb"); !ok {
		d.add(CheckEnvelope, Skip, unreadable("MaxEnvelopeSizekb", hr), "")
	} else if kb < MinEnvelopeSizekb {
		d.add(CheckEnvelope, Fail, fmt.Sprintf("MaxEnvelopeSizekb is %d: relaylock's stdin Sends are up to ~136 KB", kb),
			`on the host: winrm set winrm/config @{MaxEnvelopeSizekb="500"}`)
	} else {
		d.add(CheckEnvelope, Pass, fmt.Sprintf("MaxEnvelopeSizekb is %d", kb), "")
	}
}

func unreadable(name, hr string) string {
	s := name + " could not be read from WSMan:\\localhost"
	if hr == remediate.HResultAccessDenied {
		s += " (access denied: not a local administrator?)"
	} else if hr != "" {
		s += " (HRESULT " + hr + ")"
	}
	return s
}

func (d *run) feature(name string) (present bool, hresult string) {
	for _, f := range d.out.Of("feature") {
		if f.Str("name") == name {
			p, _ := f.Bool("present")
			return p, f.Str("hresult")
		}
	}
	return false, ""
}

func (d *run) features() {
	switch d.info.Platform {
	case remediate.PlatformIIS, remediate.PlatformExchange2003:
	default:
		d.skip("not used on "+string(d.info.Platform), CheckWebWMI, CheckMetabase)
		return
	}
	if ok, hr := d.feature("Web-WMI"); ok {
		d.add(CheckWebWMI, Pass, `root\MicrosoftIISv2 exists (IIS 6 WMI Compatibility)`, "")
	} else {
		d.add(CheckWebWMI, Fail, `root\MicrosoftIISv2 is missing`+hrText(hr)+": relaylock reads and writes the SMTP relay settings through it",
			"install IIS 6 WMI Compatibility: Install-WindowsFeature Web-WMI (2012+), Add-WindowsFeature Web-WMI (2008 R2); on 2003 it comes with IIS")
	}
	if ok, hr := d.feature("Web-Metabase"); ok {
		d.add(CheckMetabase, Pass, "IIS://localhost/SmtpSvc binds (IIS 6 Metabase Compatibility): IIS's own reading of each relay list is cross-checked", "")
	} else {
		d.add(CheckMetabase, Skip, "IIS://localhost/SmtpSvc does not bind"+hrText(hr)+": relaylock works without it, but without IIS's own reading of the relay lists as a cross-check; install Web-Metabase to have it", "")
	}
}

func hrText(hr string) string {
	if hr == "" {
		return ""
	}
	return " (HRESULT " + hr + ")"
}

// platform: the second hop and the Exchange shell, through the platform
// driver's own read (whatever arrangement it uses to reach AD).
func (d *run) platform() {
	raw, sessionReadsAD := d.rawAD()
	switch d.info.Platform {
	case remediate.PlatformIIS:
		d.add(CheckSecondHop, Skip, "IIS SMTP keeps its relay settings in the local metabase; no second hop is needed. "+raw, "")
		d.add(CheckExchange, Skip, "no Exchange 2007 or later on this host", "")
	case remediate.PlatformExchange2003:
		drv, err := remediate.DriverFor(d.info.Platform)
		if err != nil {
			d.add(CheckSecondHop, Skip, err.Error(), "")
			break
		}
		insp, err := drv.Inspect(d.ctx, d.r, d.cfg.Host, *d.info, nil)
		unreadable := false
		if insp != nil {
			for _, f := range insp.Findings {
				unreadable = unreadable || f.ID == remediate.FindingEx2003ADUnreadable
			}
		}
		switch {
		case err != nil && !errors.Is(err, remediate.ErrADUnavailable):
			d.add(CheckSecondHop, Fail, "reading the virtual servers failed: "+err.Error(), "see the error")
		case err != nil || unreadable:
			d.add(CheckSecondHop, Fail, "Active Directory cannot be read from the WinRM session (the second hop). "+raw, secondHopFix)
		default:
			d.add(CheckSecondHop, Pass, "the SMTP virtual servers were read from Active Directory. "+raw, "")
		}
		d.add(CheckExchange, Skip, "Exchange 2000/2003 has no Exchange shell; relaylock uses LDAP and the metabase", "")
	case remediate.PlatformExchange:
		drv, err := remediate.DriverFor(d.info.Platform)
		var insp *remediate.Inspection
		if err == nil {
			insp, err = drv.Inspect(d.ctx, d.r, d.cfg.Host, *d.info, nil)
		}
		var quotaErr error
		if err != nil && insp != nil && len(insp.Runs) > 0 {
			quotaErr = remediate.ShellQuotaError(*d.info, &insp.Runs[len(insp.Runs)-1])
		}
		switch {
		case quotaErr != nil:
			// WinRM ended the shell before it reached AD: the quota, not
			// the second hop (WinRM 2.0's default of 150 MB).
			d.add(CheckExchange, Fail, quotaErr.Error(), memoryQuotaFix)
			d.add(CheckSecondHop, Skip, "not reached: WinRM ended the Exchange shell's script (MaxMemoryPerShellMB, see the memory quota check). "+raw, "")
		case err == nil:
			d.add(CheckExchange, Pass, "the Exchange Management Shell loaded and read the receive connectors", "")
			d.add(CheckSecondHop, Pass, "the Exchange cmdlets reached Active Directory. "+raw, "")
		case errors.Is(err, remediate.ErrFeatureMissing):
			d.add(CheckExchange, Fail, err.Error(), "install the Exchange Management Tools on the host, or point relaylock at a server that has them")
			d.add(CheckSecondHop, Skip, "the Exchange shell is missing. "+raw, "")
		default:
			d.add(CheckExchange, Fail, "the Exchange Management Shell did not load or could not read: "+err.Error(),
				"run the Exchange Management Shell on the host as the same account; if it works there, the cause is the WinRM second hop (see second-hop)")
			st := Fail
			if sessionReadsAD {
				st = Skip // the session reaches AD: the shell failed for another reason
			}
			d.add(CheckSecondHop, st, "Exchange cmdlets need Active Directory and, on 2010+, a second remote session. "+raw, secondHopFix)
		}
	default:
		d.skip("unknown platform", CheckSecondHop, CheckExchange)
	}
}

// memoryQuotaFix raises MaxMemoryPerShellMB to MinMemoryPerShellMBExchange.
var memoryQuotaFix = fmt.Sprintf(`on the host, as an administrator: Set-Item WSMan:\localhost\Shell\MaxMemoryPerShellMB %d (or winrm set winrm/config/winrs @{MaxMemoryPerShellMB="%d"})`,
	MinMemoryPerShellMBExchange, MinMemoryPerShellMBExchange)

const secondHopFix = "the WinRM second hop: the session holds no credentials for the domain controller (NTLM, or Kerberos without delegation): " +
	"see README 'Second hop' for the arrangement relaylock supports (explicit credentials), or enable CredSSP / Kerberos constrained delegation for the account"

// rawAD describes doctor.ps1's own LDAP read (without credentials) and
// whether it succeeded.
func (d *run) rawAD() (string, bool) {
	if d.out == nil {
		return "", false
	}
	ad, ok := d.out.First("ad")
	if !ok {
		return "", false
	}
	joined, _ := ad.Bool("joined")
	okRead, _ := ad.Bool("ok")
	switch {
	case !joined:
		return "The host is not in a domain.", false
	case okRead:
		return "The session itself reads the domain " + ad.Str("dn") + " (it has network credentials).", true
	}
	return "The session itself cannot read the domain" + hrText(ad.Str("hresult")) + ": it has no network credentials.", false
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
