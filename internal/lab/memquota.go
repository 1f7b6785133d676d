package lab

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/relaylock/relaylock/remediate"
)

// WinRM's MaxMemoryPerShellMB: "the maximum total amount of memory in
// megabytes that can be allocated by any active remote shell and all its
// child processes ... the remote operation is terminated when a new
// allocation exceeds the specified quota" (Group Policy "Specify maximum
// amount of memory in MB per Shell": "If you disable or do not configure
// this policy setting, the value 150 is used by default"). WinRM 2.0's
// "Quota Management for Remote Shells" (MSDN ee309367, v=vs.85) gives
// the same default, 150 MB; WinRM 3.0 and later default to 1024 MB (the
// current page, and MS-WSMV 2.2.4.42 WinrsType). WinRM 2.0 is the WinRM
// of Windows Server 2008 R2 and of the Windows Management Framework for
// 2003/2008 (with PowerShell 2.0): the hosts of Exchange 2003, 2007 and
// 2010.
//
// The lab enforces the quota on every host, at the default of the host's
// OS unless its configuration raises it (HostConditions, Apply): it
// charges each script an approximate cost and ends the process the way a
// process that cannot allocate ends: no result, an out-of-memory error on
// stderr, a non-zero exit code (as seen in ansible/ansible#39327, where
// allocations over the quota fail with "The paging file is too small for
// this operation to complete."). No WS-Management fault for this quota is
// documented; the exact text and exit code are UNVERIFIED
// (remediate.UnverifiedFacts "winrs-memory-quota-exceeded").

// Approximate memory a WinRS process takes to run a relaylock script, in
// MB. UNVERIFIED estimates (remediate.UnverifiedFacts
// "exchange-shell-memory"): loading the Exchange 2007/2010 shell under
// PowerShell 2.0 (snap-ins, RemoteExchange.ps1, an imported remote
// session) ~200 MB; under PowerShell 3.0+ (2013 and later) ~400 MB; any
// other script ~60 MB (powershell.exe 2.0 with a script).
const (
	ExchangeShellCostPS2MB = 200
	ExchangeShellCostMB    = 400
	ScriptBaseCostMB       = 60
)

// WinRM2DefaultMaxMemoryPerShellMB and DefaultMaxMemoryPerShellMB are
// WinRM's defaults for MaxMemoryPerShellMB before Windows 6.2 (WinRM 2.0)
// and from 6.2 (Windows Server 2012, WinRM 3.0) on.
const (
	WinRM2DefaultMaxMemoryPerShellMB = 150
	DefaultMaxMemoryPerShellMB       = 1024
)

// outOfMemoryText is what the lab's process prints on stderr when its
// cost exceeds the shell's quota.
const outOfMemoryText = "Exception of type 'System.OutOfMemoryException' was thrown.\r\n" +
	"The paging file is too small for this operation to complete.\r\n"

// shellQuotaMB is the host's MaxMemoryPerShellMB: the condition's value,
// else WinRM's default for its OS (150 before Windows 6.2, else 1024).
func shellQuotaMB(info remediate.HostInfo, c HostConditions) int {
	if c.MaxMemoryPerShellMB > 0 {
		return c.MaxMemoryPerShellMB
	}
	if osBefore62(info.OSVersion) {
		return WinRM2DefaultMaxMemoryPerShellMB
	}
	return DefaultMaxMemoryPerShellMB
}

// scriptCostMB is the approximate memory a script takes on h: scripts
// that load the Exchange Management Shell (exchange-*, and the hop check
// on Exchange 2007+) are the heavy ones.
func scriptCostMB(info remediate.HostInfo, script string) int {
	if info.Platform != remediate.PlatformExchange {
		return ScriptBaseCostMB
	}
	if !strings.HasPrefix(script, "exchange-") && script != remediate.HopCheckScript {
		return ScriptBaseCostMB
	}
	if strings.HasPrefix(info.PSVersion, "2.") {
		return ExchangeShellCostPS2MB
	}
	return ExchangeShellCostMB
}

// overQuota reports whether script exceeds the host's shell memory quota:
// the one its configuration sets, else WinRM's default for its OS. So a
// lab host that models WinRM 2.0 (Exchange 2007/2010 on Windows 2008 /
// 2008 R2) ends every script that loads the Exchange shell until its
// quota is raised, as on Windows.
func overQuota(info remediate.HostInfo, c HostConditions, script string) bool {
	return scriptCostMB(info, script) > shellQuotaMB(info, c)
}

// ErrHostCommand reports an administrator's command the lab's host does
// not understand (HostConditions.Apply).
var ErrHostCommand = errors.New("lab: not a host command the lab understands")

// The two forms relaylock and its README give to raise the quota, as
// typed at a prompt on the host: winrm.cmd's (the hashtable quoted with
// '...' in PowerShell, bare in cmd.exe) and the WSMan: drive's.
var (
	reWinRMSetWinrs = regexp.MustCompile(`(?i)^winrm(?:\.cmd)?\s+(?:set|s)\s+winrm/config/winrs\s+('?)@\{\s*MaxMemoryPerShellMB\s*=\s*"(\d{1,10})"\s*\}('?)$`)
	reSetItemWSMan  = regexp.MustCompile(`(?i)^Set-Item\s+(?:-Path\s+)?WSMan:\\localhost\\Shell\\MaxMemoryPerShellMB\s+(?:-Value\s+)?(\d{1,10})(?:\s+-Force)?$`)
)

// Apply returns c changed as the host's administrator's command changes
// the host. It understands the commands that raise MaxMemoryPerShellMB:
//
//	winrm set winrm/config/winrs @{MaxMemoryPerShellMB="1024"}
//	Set-Item WSMan:\localhost\Shell\MaxMemoryPerShellMB 1024
//
// (remediate.ShellMemoryQuotaFixWinRM2 and remediate.ShellMemoryQuotaFix,
// which the README and relaylock's errors give). Anything else, and 0
// (unlimited, which the lab does not model), is ErrHostCommand.
func (c HostConditions) Apply(command string) (HostConditions, error) {
	cmd := strings.TrimSpace(command)
	var digits string
	if m := reWinRMSetWinrs.FindStringSubmatch(cmd); m != nil && m[1] == m[3] {
		digits = m[2]
	} else if m := reSetItemWSMan.FindStringSubmatch(cmd); m != nil {
		digits = m[1]
	} else {
		return c, fmt.Errorf("%w: %q", ErrHostCommand, command)
	}
	mb, err := strconv.Atoi(digits)
	if err != nil || mb < 1 || mb > 0x7FFFFFFF {
		return c, fmt.Errorf("%w: %q: MaxMemoryPerShellMB %s is not modelled (1 to 2147483647)", ErrHostCommand, command, digits)
	}
	c.MaxMemoryPerShellMB = mb
	return c, nil
}

// HostPreparation is what the README asks an administrator to run on a
// host like h before relaylock manages it, beyond the listener and the
// account: on a WinRM 2.0 host of Exchange 2007/2010, raising
// MaxMemoryPerShellMB from its default of 150 MB. Each entry is the
// command, as HostConditions.Apply takes it.
func HostPreparation(h Host) []string {
	info := h.HostInfo()
	if info.Platform == remediate.PlatformExchange && overQuota(info, HostConditions{}, remediate.HopCheckScript) {
		return []string{remediate.ShellMemoryQuotaFixWinRM2}
	}
	return nil
}

// PreparedConditions are h's conditions once its administrator has run
// HostPreparation's commands: what a host that follows the README looks
// like to relaylock.
func PreparedConditions(h Host) HostConditions {
	c, err := HostConditions{}.ApplyAll(HostPreparation(h))
	if err != nil {
		panic(err) // HostPreparation gives only commands Apply takes
	}
	return c
}

// ApplyAll applies commands in turn (Apply).
func (c HostConditions) ApplyAll(commands []string) (HostConditions, error) {
	for _, cmd := range commands {
		var err error
		if c, err = c.Apply(cmd); err != nil {
			return c, err
		}
	}
	return c, nil
}

// quotaNote is the lab's one-line note on a host whose quota ends the
// Exchange shell's scripts (for Config.Logf), or "".
func quotaNote(h Host, c HostConditions) string {
	info := hostInfo(h, c)
	if info.Platform != remediate.PlatformExchange || !overQuota(info, c, remediate.HopCheckScript) {
		return ""
	}
	source := "WinRM's default on " + info.OSCaption
	if c.MaxMemoryPerShellMB > 0 {
		source = "as configured"
	}
	return fmt.Sprintf("host: MaxMemoryPerShellMB is %d (%s): scripts that load the Exchange shell end out of memory, as on Windows, "+
		"until the quota is raised as the README asks (%s; relaylock lab: --max-memory-per-shell-mb %d)",
		shellQuotaMB(info, c), source, remediate.ShellMemoryQuotaFixWinRM2, DefaultMaxMemoryPerShellMB)
}
