# BEGIN hop-credential (templates/powershell/lib/hop-credential.ps1, included by every
# script that reaches Active Directory or the Exchange shell: the second hop, remediate/hop.go)
# This WinRS process runs under a network logon, which holds no credentials for another
# server. relaylock passes the operator's credential as DATA in the stdin parameter table:
#   _hop_user             DOMAIN\user or user@domain ('' or absent: none)
#   _secret_hop_password  its password (never printed, never recorded)
# The password is taken out of $P at once so that nothing later can print it.
$rlHopUser = [string]$P['_hop_user']
$rlHopPass = [string]$P['_secret_hop_password']
$P.Remove('_secret_hop_password')
$rlHopExplicit = ($rlHopUser -ne '' -and $rlHopPass -ne '')

# RL-HopCred: the credential as a PSCredential (New-PSSession -Credential).
function RL-HopCred {
    $sec = ConvertTo-SecureString -String $rlHopPass -AsPlainText -Force
    return New-Object Management.Automation.PSCredential($rlHopUser, $sec)
}

# RL-DirEntry: an ADSI DirectoryEntry for path, bound with the explicit credential
# (Secure = Negotiate, Signing and Sealing protect the bind) when there is one.
function RL-DirEntry([string]$path) {
    if ($rlHopExplicit) {
        $auth = [DirectoryServices.AuthenticationTypes]'Secure, Signing, Sealing'
        return New-Object DirectoryServices.DirectoryEntry($path, $rlHopUser, $rlHopPass, $auth)
    }
    return New-Object DirectoryServices.DirectoryEntry($path)
}

# RL-ShellUri: the Exchange remote shell of this server, http://<fqdn>/PowerShell/. The FQDN
# is what the resolver gives for this computer's name (host name + primary DNS suffix, the name Kerberos
# knows the server by), else Win32_ComputerSystem's DNSHostName.Domain.
function RL-ShellUri {
    $fqdn = ''
    try { $fqdn = [string][Net.Dns]::GetHostByName($env:COMPUTERNAME).HostName } catch { $fqdn = '' }
    if ($fqdn -notmatch '\.') {
        $cs = Get-WmiObject -Class Win32_ComputerSystem
        $fqdn = [string]$cs.DNSHostName + '.' + [string]$cs.Domain
    }
    return ('http://' + $fqdn.ToLower() + '/PowerShell/')
}

# RL-HResult: the HRESULT of an exception as 0xXXXXXXXX (for localized hosts, where
# the message text is translated), or ''.
function RL-HResult($ex) {
    $msg = ''
    while ($null -ne $ex) {
        if ($ex -is [ComponentModel.Win32Exception]) { return ('0x{0:X8}' -f (0x80070000 -bor $ex.NativeErrorCode)) }
        if ($ex -is [Runtime.InteropServices.ExternalException] -and $ex.ErrorCode -ne 0) { return ('0x{0:X8}' -f $ex.ErrorCode) }
        $msg += ' ' + $ex.Message
        $ex = $ex.InnerException
    }
    # WinRM client errors carry the code in their (possibly translated) text.
    if ($msg -match '0x[0-9A-Fa-f]{8}') { return $matches[0] }
    return ''
}

# END hop-credential
