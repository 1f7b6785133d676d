package lab

import (
	"strings"

	"github.com/relaylock/relaylock/remediate"
)

// WinRM's MaxMemoryPerShellMB: "the maximum total amount of memory in
// megabytes that can be allocated by any active remote shell and all its
// child processes ... the remote operation is terminated when a new
// allocation exceeds the specified quota" (Group Policy "Specify maximum
// amount of memory in MB per Shell"; default 150 under WinRM 2.0, 1024 in
// "Quota Management for Remote Shells" for later versions). The lab
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
		return 150
	}
	return 1024
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

// overQuota reports whether script exceeds the host's shell memory quota.
// The quota is enforced when it is set (HostConditions.MaxMemoryPerShellMB,
// `relaylock lab --max-memory-per-shell-mb`); a host left at WinRM's
// default reports the default (doctor and detect warn) but is not yet
// enforced, because the lab's other Exchange 2007/2010 tests model hosts
// at the default.
func overQuota(info remediate.HostInfo, c HostConditions, script string) bool {
	return c.MaxMemoryPerShellMB > 0 && scriptCostMB(info, script) > shellQuotaMB(info, c)
}
