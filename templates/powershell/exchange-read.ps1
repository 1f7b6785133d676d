# exchange-read: read the relay-relevant settings of an Exchange server.
# Product: Exchange 2007 / 2010 / 2013 / 2016 / 2019 / Subscription Edition (Mailbox, Hub, Edge).
# Mode: read. Idempotent: changes nothing.
# PowerShell 2.0 compatible. Parameters (data only): dc (optional) the domain controller to
# read from (-DomainController); the second-hop credential (lib/hop-credential.ps1).
# Records (decoded by remediate's decodeExchangeRead; the lab builds them with its own code,
# internal/lab exReadRecs, so keep both in step with this file):
#   warning   message
#   exinfo    server, loader, anon_sid, anon_name (ANONYMOUS LOGON translated from S-1-5-7: the
#             name is localized, e.g. NT-AUTORITAET\ANONYMOUS-ANMELDUNG on German systems),
#             dc (the domain controller every cmdlet of this run used)
#   connector id, name, server, role ($null before Exchange 2013), enabled, bindings, ranges,
#             auth, groups (lists are newline-joined), comment (the connector's Comment: relaylock
#             marks the connector it creates there)
#   ace       id (connector identity), user, sid ($null when it cannot be resolved), inherited:
#             every non-deny ACE granting ms-Exch-SMTP-Accept-Any-Recipient (docs/windows-relay.md 3.2)
#   domain    name, domain, type, default (accepted domains)
# relaylock:include hop-credential
# relaylock:include hop-netonly
# relaylock:include exchange-loader

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
RL-Rec 'exinfo' @('server', $server, 'loader', $rlLoader, 'anon_sid', 'S-1-5-7', 'anon_name', $anonName, 'dc', $rlDC)

foreach ($rc in @(Get-ReceiveConnector -Server $server @rlDCArg)) {
    $role = $null
    if ($null -ne $rc.PSObject.Properties['TransportRole']) { $role = [string]$rc.TransportRole }
    $id = [string]$rc.Identity
    RL-Rec 'connector' @('id', $id, 'name', [string]$rc.Name, 'server', [string]$rc.Server, 'role', $role,
        'enabled', [string]$rc.Enabled, 'bindings', (RLX-Items $rc.Bindings), 'ranges', (RLX-Items $rc.RemoteIPRanges),
        'auth', (RLX-Flags $rc.AuthMechanism), 'groups', (RLX-Flags $rc.PermissionGroups), 'comment', [string]$rc.Comment)
    $dn = [string]$rc.DistinguishedName
    if ($dn -eq '') { $dn = $id }
    foreach ($ace in @(Get-ADPermission -Identity $dn @rlDCArg)) {
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

foreach ($d in @(Get-AcceptedDomain @rlDCArg)) {
    RL-Rec 'domain' @('name', [string]$d.Name, 'domain', [string]$d.DomainName, 'type', [string]$d.DomainType, 'default', [string]$d.Default)
}

RL-End 0
