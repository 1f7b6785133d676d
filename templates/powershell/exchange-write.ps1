# exchange-write: apply relaylock's changes to an Exchange server's receive connectors and
# accepted domains, one operation at a time, in order.
# Product: Exchange 2007 / 2010 / 2013 / 2016 / 2019 / Subscription Edition.
# Mode: write. Idempotency: the driver plans only operations whose target differs from the
# state it just read, so running a plan twice is refused or harmless; each operation sets
# absolute values (never "add to the current list").
# PowerShell 2.0 compatible. Every value is DATA from $P (never spliced into source):
#   ops                number of operations N; for i in 1..N the parameters op<i>_<field>:
#   op<i>_kind         new-connector | set-connector | remove-connector | add-ace | remove-ace |
#                      set-domain | new-domain | remove-domain
#   op<i>_identity     connector identity (SERVER\Name) or accepted domain identity (Name)
#   op<i>_name, _server, _role   new connector name, server, TransportRole ('' = no -TransportRole:
#                      Exchange 2007/2010, where -Usage Custom is used instead of -Custom)
#   op<i>_set          set-connector: newline list of the fields to set (enabled, bindings,
#                      ranges, auth, groups)
#   op<i>_enabled      True | False
#   op<i>_bindings, _ranges, _auth, _groups   newline-joined lists (empty auth/groups = None)
#   op<i>_user, _sid   principal of an ACE on ms-Exch-SMTP-Accept-Any-Recipient; the SID is
#                      translated here so that localized names (ANONYMOUS LOGON) always match
#   op<i>_domain, _type  accepted domain DomainName, DomainType
# Records: 'done' op=<i> kind=<kind> after each operation that succeeded; on the first failure
# an 'error' record (message, op, kind) and exit code 1: later operations are not run.
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

function RLX-List([string]$name) {
    $v = $P[$name]
    $a = @()
    if ($null -eq $v) { return ,$a }
    foreach ($x in ($v -split "`n")) { if ($x.Trim() -ne '') { $a += $x.Trim() } }
    return ,$a
}

function RLX-FlagsArg([string]$name) {
    $a = RLX-List $name
    if ($a.Count -eq 0) { return 'None' }
    return ($a -join ',')
}

function RLX-Principal([string]$i) {
    $sid = $P['op' + $i + '_sid']
    if ($sid) {
        try { return (New-Object Security.Principal.SecurityIdentifier $sid).Translate([Security.Principal.NTAccount]).Value } catch { }
    }
    return $P['op' + $i + '_user']
}

function RLX-ConnectorDN([string]$identity) {
    $rc = Get-ReceiveConnector -Identity $identity
    $dn = [string]$rc.DistinguishedName
    if ($dn -eq '') { $dn = [string]$rc.Identity }
    return $dn
}

$right = 'ms-Exch-SMTP-Accept-Any-Recipient'
$n = [int]$P['ops']
for ($i = 1; $i -le $n; $i++) {
    $pre = 'op' + $i + '_'
    $kind = $P[$pre + 'kind']
    $id = $P[$pre + 'identity']
    try {
        switch ($kind) {
            'new-connector' {
                $a = @{
                    Name             = $P[$pre + 'name']
                    Server           = $P[$pre + 'server']
                    Bindings         = (RLX-List ($pre + 'bindings'))
                    RemoteIPRanges   = (RLX-List ($pre + 'ranges'))
                    AuthMechanism    = (RLX-FlagsArg ($pre + 'auth'))
                    PermissionGroups = (RLX-FlagsArg ($pre + 'groups'))
                }
                $role = $P[$pre + 'role']
                if ($role) { $a['TransportRole'] = $role; $a['Custom'] = $true } else { $a['Usage'] = 'Custom' }
                New-ReceiveConnector @a | Out-Null
            }
            'set-connector' {
                $a = @{ Identity = $id }
                $fields = RLX-List ($pre + 'set')
                if ($fields -contains 'enabled') { $a['Enabled'] = [bool]::Parse($P[$pre + 'enabled']) }
                if ($fields -contains 'bindings') { $a['Bindings'] = (RLX-List ($pre + 'bindings')) }
                if ($fields -contains 'ranges') { $a['RemoteIPRanges'] = (RLX-List ($pre + 'ranges')) }
                if ($fields -contains 'auth') { $a['AuthMechanism'] = (RLX-FlagsArg ($pre + 'auth')) }
                if ($fields -contains 'groups') { $a['PermissionGroups'] = (RLX-FlagsArg ($pre + 'groups')) }
                Set-ReceiveConnector @a -Confirm:$false | Out-Null
            }
            'remove-connector' {
                Remove-ReceiveConnector -Identity $id -Confirm:$false | Out-Null
            }
            'add-ace' {
                Add-ADPermission -Identity (RLX-ConnectorDN $id) -User (RLX-Principal $i) -ExtendedRights $right -Confirm:$false | Out-Null
            }
            'remove-ace' {
                Remove-ADPermission -Identity (RLX-ConnectorDN $id) -User (RLX-Principal $i) -ExtendedRights $right -Confirm:$false | Out-Null
            }
            'set-domain' {
                Set-AcceptedDomain -Identity $id -DomainType $P[$pre + 'type'] -Confirm:$false | Out-Null
            }
            'new-domain' {
                New-AcceptedDomain -Name $P[$pre + 'name'] -DomainName $P[$pre + 'domain'] -DomainType $P[$pre + 'type'] | Out-Null
            }
            'remove-domain' {
                Remove-AcceptedDomain -Identity $id -Confirm:$false | Out-Null
            }
            default {
                throw ('unknown operation kind: ' + $kind)
            }
        }
    } catch {
        RL-Rec 'error' @('message', $_.Exception.Message, 'op', $i, 'kind', $kind)
        RL-End 1
    }
    RL-Rec 'done' @('op', $i, 'kind', $kind)
}

RL-End 0
