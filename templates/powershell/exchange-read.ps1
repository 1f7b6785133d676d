# exchange-read: read the relay-relevant settings of an Exchange server.
# Product: Exchange 2007 / 2010 / 2013 / 2016 / 2019 / Subscription Edition (Mailbox, Hub, Edge).
# Mode: read. Idempotent: changes nothing.
# PowerShell 2.0 compatible. Parameters: none besides _nonce.
# Records (decoded by remediate/exchange.go decodeExchangeRead; the lab prints them with
# remediate.EncodeExchangeState, so keep both in step with this file):
#   warning   message
#   exinfo    server, loader, anon_sid, anon_name (ANONYMOUS LOGON translated from S-1-5-7: the
#             name is localized, e.g. NT-AUTORITAET\ANONYMOUS-ANMELDUNG on German systems)
#   connector id, name, server, role ($null before Exchange 2013), enabled, bindings, ranges,
#             auth, groups (lists are newline-joined)
#   ace       id (connector identity), user, sid ($null when it cannot be resolved), inherited:
#             every non-deny ACE granting ms-Exch-SMTP-Accept-Any-Recipient (windows-relay.md 3.2)
#   domain    name, domain, type, default (accepted domains)
# BEGIN exchange-loader (identical in every exchange-*.ps1; checked by remediate/exchange_test.go)
# Loads the Exchange cmdlets into this WinRS powershell.exe (windows-relay.md 3.4, after
# microsoft/CSS-Exchange Shared/Confirm-ExchangeShell.ps1): refuse a 32-bit process; 2007: the
# Admin snap-in; Edge: the snap-ins of exShell.psc1 + Exchange.ps1; 2010+: RemoteExchange.ps1 +
# Connect-ExchangeServer -Auto, falling back to the local snap-in with a warning record.
# Write-Host is shadowed (for the rest of this short-lived process: relaylock's scripts never
# use it) so the loaders' banners cannot break the result frame on stdout.
$rlLoader = ''
if ([IntPtr]::Size -ne 8) {
    RL-Rec 'error' @('message', 'Exchange Management Shell could not be loaded: this is a 32-bit PowerShell process; run the 64-bit powershell.exe', 'kind', 'load')
    RL-End 3
}
if ($null -ne (Get-Command Get-ReceiveConnector -ErrorAction SilentlyContinue)) {
    $rlLoader = 'present'
} else {
    function global:Write-Host { }
    $rlKey = ''
    foreach ($k in @('HKLM:\SOFTWARE\Microsoft\ExchangeServer\v15', 'HKLM:\SOFTWARE\Microsoft\ExchangeServer\v14')) {
        if ($rlKey -eq '' -and (Test-Path ($k + '\Setup'))) { $rlKey = $k }
    }
    try {
        if ($rlKey -eq '') {
            Add-PSSnapin Microsoft.Exchange.Management.PowerShell.Admin
            $rlLoader = 'snapin-2007'
        } else {
            $rlInstall = $env:ExchangeInstallPath
            if (-not $rlInstall) { $rlInstall = (Get-ItemProperty ($rlKey + '\Setup')).MsiInstallPath }
            if (Test-Path ($rlKey + '\EdgeTransportRole')) {
                [xml]$rlPsc = Get-Content (Join-Path $rlInstall 'Bin\exShell.psc1')
                foreach ($s in @($rlPsc.PSConsoleFile.PSSnapIns.PSSnapIn)) { Add-PSSnapin $s.Name }
                . (Join-Path $rlInstall 'bin\Exchange.ps1') | Out-Null
                $rlLoader = 'edge'
            } else {
                try {
                    . (Join-Path $rlInstall 'bin\RemoteExchange.ps1') | Out-Null
                    Connect-ExchangeServer -Auto | Out-Null
                    if ($null -eq (Get-Command Get-ReceiveConnector -ErrorAction SilentlyContinue)) { throw 'Connect-ExchangeServer did not import the Exchange cmdlets' }
                    $rlLoader = 'remote'
                } catch {
                    $rlFirst = $_.Exception.Message
                    $rlSnap = 'Microsoft.Exchange.Management.PowerShell.SnapIn'
                    if ($rlKey -like '*v14') { $rlSnap = 'Microsoft.Exchange.Management.PowerShell.E2010' }
                    Add-PSSnapin $rlSnap
                    $rlLoader = 'snapin'
                    RL-Rec 'warning' @('message', ('Connect-ExchangeServer failed (' + $rlFirst + '); loaded the local snap-in ' + $rlSnap + ' instead, which Microsoft does not support beyond reading and receive connector changes'))
                }
            }
        }
    } catch {
        $rlMsg = 'Exchange Management Shell could not be loaded: ' + $_.Exception.Message
        if ($rlMsg -match 'ANONYMOUS|Kerberos|delegat|Access is denied|Access denied|401') {
            $rlMsg += ' (this looks like the WinRM second-hop problem: a session authenticated with NTLM or Basic cannot pass credentials on to Active Directory or to the Exchange /PowerShell endpoint; use Kerberos with delegation or run the script locally on the server)'
        }
        RL-Rec 'error' @('message', $rlMsg, 'kind', 'load')
        RL-End 3
    }
}
# END exchange-loader

function RLX-Items($v) {
    $a = @()
    foreach ($x in @($v)) { if ($null -ne $x -and ([string]$x) -ne '') { $a += ([string]$x).Trim() } }
    return ($a -join "`n")
}

# Flags enums (AuthMechanism, PermissionGroups) print as 'Tls, BasicAuth'; remote sessions
# deserialize them as that string.
function RLX-Flags($v) {
    $a = @()
    foreach ($x in (([string]$v) -split ',')) { if ($x.Trim() -ne '') { $a += $x.Trim() } }
    return ($a -join "`n")
}

$right = 'ms-Exch-SMTP-Accept-Any-Recipient'
$anonName = (New-Object Security.Principal.SecurityIdentifier 'S-1-5-7').Translate([Security.Principal.NTAccount]).Value
$server = $env:COMPUTERNAME
RL-Rec 'exinfo' @('server', $server, 'loader', $rlLoader, 'anon_sid', 'S-1-5-7', 'anon_name', $anonName)

foreach ($rc in @(Get-ReceiveConnector -Server $server)) {
    $role = $null
    if ($null -ne $rc.PSObject.Properties['TransportRole']) { $role = [string]$rc.TransportRole }
    $id = [string]$rc.Identity
    RL-Rec 'connector' @('id', $id, 'name', [string]$rc.Name, 'server', [string]$rc.Server, 'role', $role,
        'enabled', [string]$rc.Enabled, 'bindings', (RLX-Items $rc.Bindings), 'ranges', (RLX-Items $rc.RemoteIPRanges),
        'auth', (RLX-Flags $rc.AuthMechanism), 'groups', (RLX-Flags $rc.PermissionGroups))
    $dn = [string]$rc.DistinguishedName
    if ($dn -eq '') { $dn = $id }
    foreach ($ace in @(Get-ADPermission -Identity $dn)) {
        if ($ace.Deny) { continue }
        $rights = @()
        foreach ($r in @($ace.ExtendedRights)) { if ($null -ne $r) { $rights += [string]$r } }
        if (-not ($rights -contains $right)) { continue }
        $user = [string]$ace.User
        $sid = $null
        if ($null -ne $ace.User -and $null -ne $ace.User.PSObject.Properties['SecurityIdentifier'] -and $null -ne $ace.User.SecurityIdentifier) {
            $sid = [string]$ace.User.SecurityIdentifier
        } else {
            try { $sid = (New-Object Security.Principal.NTAccount $user).Translate([Security.Principal.SecurityIdentifier]).Value } catch { $sid = $null }
        }
        RL-Rec 'ace' @('id', $id, 'user', $user, 'sid', $sid, 'inherited', [string]$ace.IsInherited)
    }
}

foreach ($d in @(Get-AcceptedDomain)) {
    RL-Rec 'domain' @('name', [string]$d.Name, 'domain', [string]$d.DomainName, 'type', [string]$d.DomainType, 'default', [string]$d.Default)
}

RL-End 0
