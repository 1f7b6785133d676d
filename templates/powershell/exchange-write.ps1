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
#                      Exchange 2007/2010).
#   op<i>_comment      new connector's -Comment (relaylock's mark on the connector it creates) New connectors are created with the -Custom switch, which
#                      Exchange 2007 (whose cmdlet has no Usage parameter: 2010+) and every later version take.
#   op<i>_set          set-connector: newline list of the fields to set (enabled, bindings,
#                      ranges, auth, groups)
#   op<i>_enabled      True | False
#   op<i>_bindings, _ranges, _auth, _groups   newline-joined lists (empty auth/groups = None)
#   op<i>_user, _sid   principal of an ACE on ms-Exch-SMTP-Accept-Any-Recipient; the SID is
#                      translated here so that localized names (ANONYMOUS LOGON) always match
#   op<i>_domain, _type  accepted domain DomainName, DomainType
#   dc                 the domain controller to write to (-DomainController): the one the read used
#   allow_snapin       'yes' lets the write go through the bare snap-in on 2010+ (--force)
# Records: 'done' op=<i> kind=<kind> after each operation that succeeded; on the first failure
# an 'error' record (message, op, kind) and exit code 1: later operations are not run.
# relaylock:include hop-credential
# relaylock:include hop-netonly
# relaylock:include exchange-loader

if ($rlLoader -eq 'snapin' -and [string]$P['allow_snapin'] -ne 'yes') {
    RL-Rec 'error' @('message', 'refusing to write through the bare Exchange snap-in: Microsoft supports it on Exchange 2010 and later for *-TransportAgent cmdlets only ("may result in irreparable damage"); fix the Exchange remote shell or pass --force', 'kind', 'unsupported-shell')
    RL-End 2
}

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
    $rc = Get-ReceiveConnector -Identity $identity @rlDCArg
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
                if ($role) { $a['TransportRole'] = $role }
                $comment = $P[$pre + 'comment']
                if ($comment) { $a['Comment'] = $comment }
                New-ReceiveConnector @a -Custom @rlDCArg | Out-Null
            }
            'set-connector' {
                $a = @{ Identity = $id }
                $fields = RLX-List ($pre + 'set')
                if ($fields -contains 'enabled') { $a['Enabled'] = [bool]::Parse($P[$pre + 'enabled']) }
                if ($fields -contains 'bindings') { $a['Bindings'] = (RLX-List ($pre + 'bindings')) }
                if ($fields -contains 'ranges') { $a['RemoteIPRanges'] = (RLX-List ($pre + 'ranges')) }
                if ($fields -contains 'auth') { $a['AuthMechanism'] = (RLX-FlagsArg ($pre + 'auth')) }
                if ($fields -contains 'groups') { $a['PermissionGroups'] = (RLX-FlagsArg ($pre + 'groups')) }
                Set-ReceiveConnector @a @rlDCArg -Confirm:$false | Out-Null
            }
            'remove-connector' {
                Remove-ReceiveConnector -Identity $id @rlDCArg -Confirm:$false | Out-Null
            }
            'add-ace' {
                Add-ADPermission -Identity (RLX-ConnectorDN $id) -User (RLX-Principal $i) -ExtendedRights $right @rlDCArg -Confirm:$false | Out-Null
            }
            'remove-ace' {
                Remove-ADPermission -Identity (RLX-ConnectorDN $id) -User (RLX-Principal $i) -ExtendedRights $right @rlDCArg -Confirm:$false | Out-Null
            }
            'set-domain' {
                Set-AcceptedDomain -Identity $id -DomainType $P[$pre + 'type'] @rlDCArg -Confirm:$false | Out-Null
            }
            'new-domain' {
                New-AcceptedDomain -Name $P[$pre + 'name'] -DomainName $P[$pre + 'domain'] -DomainType $P[$pre + 'type'] @rlDCArg | Out-Null
            }
            'remove-domain' {
                Remove-AcceptedDomain -Identity $id @rlDCArg -Confirm:$false | Out-Null
            }
            default {
                throw ('unknown operation kind: ' + $kind)
            }
        }
    } catch {
        RL-ErrRec $_ $kind @('op', $i)
        RL-End 1
    }
    RL-Rec 'done' @('op', $i, 'kind', $kind)
}

RL-End 0
