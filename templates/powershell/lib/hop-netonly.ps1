# BEGIN hop-netonly (templates/powershell/lib/hop-netonly.ps1, included after hop-credential
# by the scripts that may load the Exchange 2007 snap-in: exchange-*.ps1 and hop-check.ps1)
# RL-NetOnly: the logon of runas /netonly for this thread. LogonUser with
# LOGON32_LOGON_NEW_CREDENTIALS (9) and LOGON32_PROVIDER_WINNT50 (3) returns a copy of the
# caller's token whose OUTBOUND authentication uses the given credential; impersonating it
# on this thread (PowerShell runs the script on one thread) lets the Exchange 2007 snap-in,
# whose cmdlets take no credential, reach AD. UNVERIFIED on a real host (listed in
# remediate.SecondHopUnverified). The credential is not checked here: NEW_CREDENTIALS logons never
# check it; the first AD access does.
function RL-NetOnly {
    if (-not $rlHopExplicit) { return $false }
    if ($null -eq ('RlNetOnly' -as [type])) {
        Add-Type -TypeDefinition @'
using System;
using System.Runtime.InteropServices;
public static class RlNetOnly {
    [DllImport("advapi32.dll", SetLastError = true, CharSet = CharSet.Unicode)]
    public static extern bool LogonUser(string user, string domain, string password, int logonType, int provider, out IntPtr token);
}
'@
    }
    $u = $rlHopUser
    $d = ''
    if ($u.Contains('\')) {
        $d = $u.Substring(0, $u.IndexOf('\'))
        $u = $u.Substring($u.IndexOf('\') + 1)
    } elseif ($u.Contains('@')) {
        $d = $u.Substring($u.LastIndexOf('@') + 1)
        $u = $u.Substring(0, $u.LastIndexOf('@'))
    }
    $tok = [IntPtr]::Zero
    if (-not [RlNetOnly]::LogonUser($u, $d, $rlHopPass, 9, 3, [ref]$tok)) {
        throw (New-Object ComponentModel.Win32Exception([Runtime.InteropServices.Marshal]::GetLastWin32Error()))
    }
    $global:rlNetOnlyIdentity = New-Object Security.Principal.WindowsIdentity($tok)
    $global:rlNetOnlyContext = $global:rlNetOnlyIdentity.Impersonate()
    return $true
}
# END hop-netonly
