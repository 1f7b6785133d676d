package remediate

// The second hop (issue 14 §1). relaylock's scripts run in a WinRS
// process that Windows started from a network logon: NTLM and Basic
// cannot delegate, and relaylock's Kerberos client never asks for
// delegation, so that process holds no credentials usable towards
// another service. Active Directory (Exchange 2000/2003 LDAP binds, every
// Exchange 2007+ cmdlet) and the Exchange /PowerShell endpoint (which
// Connect-ExchangeServer uses even for the local server on 2010+) are
// such services ("Making the second hop in PowerShell Remoting",
// learn.microsoft.com).
//
// relaylock passes the operator's credentials explicitly, as DATA in the
// stdin payload of the scripts that need them (never on a command line,
// never in the recorded parameters, logs or backups):
//
//   - Exchange 2000/2003: DirectoryEntry(path, user, password,
//     Secure|Signing|Sealing) for every LDAP bind (lib/hop-credential.ps1);
//   - Exchange 2010 and later: New-PSSession -ConfigurationName
//     Microsoft.Exchange -ConnectionUri http://<fqdn>/PowerShell/
//     -Credential -Authentication Kerberos, then Import-PSSession: the
//     supported way to manage Exchange (lib/exchange-loader.ps1);
//   - Exchange 2007 (snap-in only, its cmdlets take no credential):
//     LogonUser(LOGON32_LOGON_NEW_CREDENTIALS) and impersonation of the
//     resulting token on the script's thread before the snap-in loads,
//     the logon type of `runas /netonly`: local access keeps the caller's
//     identity, outbound authentication uses the given credentials.
//
// What is UNVERIFIED on a real host is listed in SecondHopUnverified
// (and in the README, section "The second hop"), each with what happens
// if the assumption is wrong.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Parameters that carry the second-hop credential. Names starting with
// SecretParamPrefix are secret: a runner sends them in the encrypted
// stdin payload and never records them (ScriptRun.Params, logs). Callers
// cannot pass them (parameter names of callers start with a letter).
const (
	SecretParamPrefix = "_secret_"
	HopUserParam      = "_hop_user"
	HopPasswordParam  = SecretParamPrefix + "hop_password"
	// HopCheckScript checks, cheaply and before any read, that AD and the
	// Exchange shell can be reached from the WinRS process.
	HopCheckScript = "hop-check"
	// DomainControllerParam pins the AD domain controller of Exchange
	// 2007+ cmdlets (-DomainController).
	DomainControllerParam = "dc"
)

// HopCredential is the account a script uses explicitly for the second
// hop: "DOMAIN\user" or "user@domain" and its password. The zero value
// means none (the process's own token is used, which over WinRS has no
// network credentials).
type HopCredential struct {
	User     string
	Password string
}

// Set reports whether the credential can be used.
func (h HopCredential) Set() bool { return h.User != "" && h.Password != "" }

// String never shows the password.
func (h HopCredential) String() string {
	if !h.Set() {
		return "none"
	}
	return h.User
}

// GoString keeps %#v from printing the password.
func (h HopCredential) GoString() string {
	return "remediate.HopCredential{User: " + strconv.Quote(h.User) + "}"
}

// hopScripts are the scripts that reach AD or the Exchange shell.
var hopScripts = map[string]bool{
	HopCheckScript:      true,
	ScriptEx2003ReadAD:  true,
	ScriptEx2003WriteAD: true,
	ExchangeReadScript:  true,
	ExchangeWriteScript: true,
}

// ScriptNeedsHop reports whether script reaches a second machine or
// service (AD, the Exchange shell) and so gets the hop credential.
func ScriptNeedsHop(script string) bool { return hopScripts[script] }

// AddHopParams adds the hop credential to p (the full parameter table sent
// on stdin) when script needs it and hop is set. It is the one place that
// builds those parameters, for WinRMRunner and the lab's DirectRunner.
func AddHopParams(p map[string]string, script string, hop HopCredential) {
	if !ScriptNeedsHop(script) || !hop.Set() {
		return
	}
	p[HopUserParam] = hop.User
	p[HopPasswordParam] = hop.Password
}

// HopNote is ScriptRun.Hop for a run of script with hop: who the script
// authenticated as for the second hop (never the password), or "".
func HopNote(script string, hop HopCredential) string {
	if !ScriptNeedsHop(script) {
		return ""
	}
	if !hop.Set() {
		return "no explicit credential (the WinRM session's own token)"
	}
	return "explicit credential of " + hop.User
}

// IsSecretParam reports whether a parameter must never be recorded.
func IsSecretParam(name string) bool { return strings.HasPrefix(name, SecretParamPrefix) }

// RecordedParams returns the parameters that may go into evidence: p
// without secret ones (nil when none is left).
func RecordedParams(p map[string]string) map[string]string {
	var c map[string]string
	for k, v := range p {
		if IsSecretParam(k) {
			continue
		}
		if c == nil {
			c = make(map[string]string, len(p))
		}
		c[k] = v
	}
	return c
}

// SecondHopUnverified names the facts of the second-hop design that no
// real host has confirmed, each with its consequence if wrong. Every one
// fails closed: the check before any read, or the read itself, fails
// and nothing is changed.
var SecondHopUnverified = []string{
	"Exchange 2007: that the snap-in's AD access uses the impersonated LOGON32_LOGON_NEW_CREDENTIALS token of the script's thread " +
		"(PowerShell runs one script on one thread). If not, the check passes (it binds AD from that thread) but Get-ExchangeServer fails " +
		"with an AD error: relaylock reports it and changes nothing.",
	"Exchange 2007: that LogonUser accepts user@dns.domain split into user and DNS domain for a NEW_CREDENTIALS logon. " +
		"If not, the AD bind fails with the logon error; use DOMAIN\\user.",
	"Exchange 2010+: that http://<fqdn>/PowerShell/ with -Authentication Kerberos and explicit credentials is reachable from the WinRS " +
		"process of a network logon (Connect-ExchangeServer does the same with the logged-on user's token). If not, the check fails, " +
		"names the second hop, and nothing is read or changed.",
	"The error texts the lab prints for a missing or refused credential are those reported for the double hop on English hosts " +
		"(0x80072020 for ADSI, ADOperationException for the Exchange cmdlets, 0x8009030e for WinRM Kerberos); " +
		"localized hosts print other texts, which is why relaylock reports the HRESULT.",
	"WinRM 2.0 quota: that the Exchange shell needs more than ExchangeShellMinMemoryMB (an estimate), and where an administrator's " +
		"MaxMemoryPerShellMB is in the registry when the WSMan: drive cannot be read from a remote shell. If wrong, the warning is " +
		"shown needlessly or not at all; the read itself is unaffected.",
}

// ErrSecondHop reports that the WinRS process could not reach Active
// Directory or the Exchange shell: the second-hop problem.
var ErrSecondHop = errors.New("second hop failed")

// SecondHopFixes are the ways to fix a failed second hop, in order of
// preference, for error messages, doctor and the README.
var SecondHopFixes = []string{
	"give relaylock a domain account's password so it can pass it explicitly (password authentication: --winrm-auth ntlm or kerberos with RELAYLOCK_WINRM_PASSWORD / --winrm-password-file; with a Kerberos ccache or a client certificate add --hop-user DOMAIN\\user and RELAYLOCK_HOP_PASSWORD or --hop-password-file)",
	"use an account that can manage Exchange (Organization Management on 2007+, Exchange Full Administrator on 2000/2003) and, for WinRM Basic, remember it logs on local accounts only: a local account cannot reach Active Directory",
	"or make the change by hand on the server, in the Exchange Management Shell (2007+) or Exchange System Manager (2000/2003)",
	"relaylock does not use CredSSP or Kerberos delegation (its WinRM client supports neither); configuring them on the server does not help it",
}

// HopCheck is what hop-check found out.
type HopCheck struct {
	// Method: "ldap-explicit", "ldap-process", "netonly", "remote-explicit",
	// "remote-process", "edge" (no AD: AD LDS is local) or "none".
	Method string `json:"method"`
	// DomainController is the DC the check was answered by (2007+), used
	// to pin the run.
	DomainController string `json:"domain_controller,omitempty"`
	Explicit         bool   `json:"explicit"`
}

// hopTarget is hop-check's "target" parameter for a host.
func hopTarget(info HostInfo) string {
	switch info.Platform {
	case PlatformExchange2003:
		return "ad"
	case PlatformExchange:
		for _, r := range info.ExchangeRoles {
			if strings.EqualFold(r, "EdgeTransport") || strings.EqualFold(r, "Edge") {
				return "edge"
			}
		}
		if info.ExchangeVersion == "2007" {
			return "exchange2007"
		}
		return "exchange"
	}
	return ""
}

// CheckSecondHop runs hop-check on a host of info's platform: an AD bind
// (Exchange 2000/2003 and 2007) or an Exchange remote PowerShell session
// (2010+), with the runner's explicit credential. It reads nothing else
// and changes nothing. On failure the error wraps ErrSecondHop, says
// "second hop" and lists SecondHopFixes. Hosts that need no second hop
// (IIS SMTP, Edge) return (nil, nil, nil). The AD bind is serverless
// (CheckSecondHopOn names a domain controller).
func CheckSecondHop(ctx context.Context, r Runner, info HostInfo) (*HopCheck, *ScriptRun, error) {
	return CheckSecondHopOn(ctx, r, info, "")
}

// CheckSecondHopOn is CheckSecondHop with the AD bind on domain
// controller dc (LDAP://dc/...), the one the run reads and writes
// through: a serverless bind reaches the DC the locator picks, so it could
// pass while the named DC cannot be reached. An empty dc binds
// serverless. A named DC that does not answer is also ErrDCUnreachable.
func CheckSecondHopOn(ctx context.Context, r Runner, info HostInfo, dc string) (*HopCheck, *ScriptRun, error) {
	target := hopTarget(info)
	if target == "" || target == "edge" {
		return nil, nil, nil
	}
	params := map[string]string{"target": target}
	if dc != "" && target != "exchange" {
		params[DomainControllerParam] = dc
	} else {
		dc = ""
	}
	run, err := r.Run(ctx, HopCheckScript, params)
	if qe := shellQuotaError(info, target, run); qe != nil {
		return nil, run, qe
	}
	if run == nil || run.Output == nil {
		if err == nil {
			err = errors.New("no result frame")
		}
		return nil, run, fmt.Errorf("second-hop check on %s: %w", info.ComputerName, err)
	}
	if e, ok := run.Output.First("hop"); ok && run.Output.ExitCode == 0 && err == nil {
		hc := &HopCheck{Method: e.Str("method"), DomainController: e.Str("dc")}
		hc.Explicit, _ = e.Bool("explicit")
		return hc, run, nil
	}
	he := &SecondHopError{Host: info.ComputerName, What: target, Reason: strings.Join(run.Errors, "; "), DC: dc}
	if er, ok := run.Output.First("hoperror"); ok {
		he.What, he.Reason = er.Str("what"), strings.TrimSpace(er.Str("message"))
		he.HResult = normHResult(er.Str("hresult"))
		if he.HResult != "" {
			he.Reason += " (" + he.HResult + ")"
		}
		he.Explicit, _ = er.Bool("explicit")
	} else if he.Reason == "" && err != nil {
		he.Reason = err.Error()
	}
	return nil, run, he
}

// ErrDCUnreachable reports that the domain controller named for the run
// does not exist or does not answer LDAP from the host
// (HResultServerDown); it comes with ErrSecondHop.
var ErrDCUnreachable = errors.New("the named domain controller cannot be reached")

// SecondHopError is a failed second hop; errors.Is(err, ErrSecondHop),
// and errors.Is(err, ErrDCUnreachable) when the named DC did not answer.
type SecondHopError struct {
	Host     string
	What     string // "Active Directory", "the Exchange shell (http://.../PowerShell/)"
	Reason   string // the Windows error, with its HRESULT
	Explicit bool   // explicit credentials were passed
	// DC is the domain controller the check bound to ("" serverless);
	// HResult the Windows error's HRESULT, when the script had one.
	DC, HResult string
}

func (e *SecondHopError) dcDown() bool { return e.DC != "" && e.HResult == HResultServerDown }

func (e *SecondHopError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "second hop: %s cannot reach %s from its WinRM session: %s", e.Host, e.What, e.Reason)
	if e.dcDown() {
		fmt.Fprintf(&b, "\nthe domain controller %s, named for this run, does not exist or does not answer LDAP from %s: check its name, or name none to use the one Exchange reads from; nothing was read or changed", e.DC, e.Host)
		return b.String()
	}
	if e.DC != "" {
		fmt.Fprintf(&b, "\nthe check bound to the domain controller named for this run, %s, as the write will", e.DC)
	}
	if e.Explicit {
		b.WriteString("\nrelaylock passed your credentials explicitly and they were refused or could not reach the service; check the account, its password and its rights")
	} else {
		b.WriteString("\na WinRM session (NTLM, Basic, or Kerberos without delegation) holds no credentials for another server, and relaylock had none to pass explicitly")
	}
	b.WriteString("\nnothing was read or changed. Ways to fix it:")
	for _, f := range SecondHopFixes {
		b.WriteString("\n  - " + f)
	}
	return b.String()
}

func (e *SecondHopError) Is(target error) bool {
	return target == ErrSecondHop || target == ErrDCUnreachable && e.dcDown()
}

// ---- one domain controller per run (Exchange 2007+) ------------------------

type dcKey struct{}

var reDCName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`)

// WithDomainController pins the AD domain controller every Exchange
// 2007+ script of this run talks to (-DomainController): a read-back from
// another DC than the write can show the old value (AD replication) and
// cause a false mismatch and a spurious rollback. An empty or malformed
// name leaves ctx as it is.
func WithDomainController(ctx context.Context, dc string) context.Context {
	if dc == "" || !reDCName.MatchString(dc) {
		return ctx
	}
	return context.WithValue(ctx, dcKey{}, dc)
}

// DomainControllerFrom returns the DC pinned in ctx, or "".
func DomainControllerFrom(ctx context.Context) string {
	s, _ := ctx.Value(dcKey{}).(string)
	return s
}

// pinFrom pins ctx to the DC an inspection read from, unless one is
// pinned already.
func pinFrom(ctx context.Context, insp *Inspection) context.Context {
	if DomainControllerFrom(ctx) != "" || insp == nil || insp.Platform != PlatformExchange {
		return ctx
	}
	st, err := exStateOf(insp)
	if err != nil {
		return ctx
	}
	return WithDomainController(ctx, st.DomainController)
}

// ExchangeShellMinMemoryMB is the MaxMemoryPerShellMB below which
// relaylock warns before loading the Exchange shell. WinRM 2.0's default
// is 150 MB and "over it the remote operation is terminated"; how much
// the Exchange shell needs is UNVERIFIED (an estimate from the size of
// the snap-ins and an imported remote session).
const ExchangeShellMinMemoryMB = 512

// ErrShellMemoryQuota reports that WinRM most likely ended the script
// for exceeding MaxMemoryPerShellMB while it loaded the Exchange shell.
var ErrShellMemoryQuota = errors.New("WinRM shell memory quota (MaxMemoryPerShellMB) exceeded")

// ShellMemoryQuotaFix is the command that raises the quota on the host
// (PowerShell's WSMan: drive); ShellMemoryQuotaFixWinRM2 is the same with
// winrm.cmd, the form Microsoft's WinRM 2.0 documentation uses (in
// PowerShell, quote the hashtable: '@{...}').
const (
	ShellMemoryQuotaFix       = `Set-Item WSMan:\localhost\Shell\MaxMemoryPerShellMB 1024`
	ShellMemoryQuotaFixWinRM2 = `winrm set winrm/config/winrs @{MaxMemoryPerShellMB="1024"}`
)

// shellQuotaError is the error of a hop check that loaded the Exchange
// shell (2007+) and ended without any result frame, on a host whose
// known quota is below ExchangeShellMinMemoryMB: WinRM ends a process
// whose allocation exceeds the quota, so it prints no result. It is nil
// otherwise. The script ran no change: nothing was read or changed.
func shellQuotaError(info HostInfo, target string, run *ScriptRun) error {
	if info.Platform != PlatformExchange || target == "ad" || run == nil || run.Output != nil || run.ExitCode == 0 ||
		info.WinRSMaxMemoryMB <= 0 || info.WinRSMaxMemoryMB >= ExchangeShellMinMemoryMB {
		return nil
	}
	return fmt.Errorf("%w on %s: the script that loads the Exchange shell ended without a result (exit code %d) and WinRM limits each remote shell to %d MB "+
		"(MaxMemoryPerShellMB, %s), less than the Exchange shell needs; nothing was read or changed. On the host, as an administrator: %s "+
		"(WinRM 2.0: %s), then check with relaylock doctor",
		ErrShellMemoryQuota, info.ComputerName, run.ExitCode, info.WinRSMaxMemoryMB, quotaSource(info), ShellMemoryQuotaFix, ShellMemoryQuotaFixWinRM2)
}

// ShellQuotaError is the ErrShellMemoryQuota error of a run of a script
// that loads the Exchange shell (exchange-read, exchange-write, hop-check
// on 2007+) and ended without a result on a host whose known quota is
// below ExchangeShellMinMemoryMB, or nil (for doctor, which reads through
// the driver).
func ShellQuotaError(info HostInfo, run *ScriptRun) error {
	return shellQuotaError(info, hopTarget(info), run)
}

// quotaSource says where detect found the MaxMemoryPerShellMB it reported.
func quotaSource(info HostInfo) string {
	switch info.WinRSMaxMemorySource {
	case "wsman":
		return "read from the WSMan: drive"
	case "registry":
		return "read from the registry"
	case "default":
		return "assumed: WinRM's default for PowerShell " + info.PSVersion + ", as the real value could not be read"
	}
	return "as detect reported it"
}

// quotaWarnings warns when WinRM's shell memory quota is likely too small
// for loading the Exchange shell (Exchange 2007+ only).
func quotaWarnings(info HostInfo) []string {
	if info.Platform != PlatformExchange || info.WinRSMaxMemoryMB <= 0 || info.WinRSMaxMemoryMB >= ExchangeShellMinMemoryMB {
		return nil
	}
	src := ""
	if info.WinRSMaxMemorySource == "default" {
		src = ", assumed: WinRM's default for PowerShell " + info.PSVersion + ", as the real value could not be read"
	}
	return []string{fmt.Sprintf("WinRM limits each remote shell to %d MB (MaxMemoryPerShellMB%s): loading the Exchange shell may exceed it, and WinRM then ends the script without a result. "+
		"If a read fails without an Exchange error, raise it on the host: "+ShellMemoryQuotaFix+" (WinRM 2.0: "+ShellMemoryQuotaFixWinRM2+")", info.WinRSMaxMemoryMB, src)}
}
