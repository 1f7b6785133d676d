# iis-read: read the relay settings of the IIS 6 SMTP service.
# Product: IIS-SMTP (also the metabase view of Exchange2003). Mode: read.
# Idempotency: read-only, changes nothing; safe to run any number of times.
# Parameters: none.
# Records (decoded by remediate/iis.go DecodeIISState):
#   service (SMTPSVC), guest (local RID-501 account), svc (IIsSmtpServiceSetting),
#   vs (IIsSmtpServerSetting), domain (IIsSmtpDomainSetting), adsi (ADSI view of
#   each RelayIpList), error.
# Objects are fetched whole (never Get-WmiObject -Property), see windows-relay.md 1.4.
$ns = 'root\MicrosoftIISv2'

$svc = Get-WmiObject -Class Win32_Service -Filter "Name='SMTPSVC'"
if ($null -eq $svc) {
    RL-Rec 'service' @('name', 'SMTPSVC', 'present', 'False', 'state', '', 'startmode', '')
} else {
    RL-Rec 'service' @('name', 'SMTPSVC', 'present', 'True', 'state', [string]$svc.State, 'startmode', [string]$svc.StartMode)
}

# The Guest account is found by its well-known RID 501 (its name is localized).
foreach ($u in @(Get-WmiObject -Class Win32_UserAccount -Filter "LocalAccount=True")) {
    if ([string]$u.SID -match '-501$') {
        RL-Rec 'guest' @('name', [string]$u.Name, 'enabled', [string](-not $u.Disabled))
        break
    }
}

try {
    $servers = @(Get-WmiObject -Namespace $ns -Class IIsSmtpServerSetting)
} catch {
    # 0x8004100E WBEM_E_INVALID_NAMESPACE (by number: messages are translated).
    if ((RL-HResult $_.Exception) -eq '0x8004100E') {
        RL-ErrRec $_ 'feature-missing' @('feature', 'Web-WMI', 'namespace', $ns)
        RL-End 3
    }
    throw
}

foreach ($s in @(Get-WmiObject -Namespace $ns -Class IIsSmtpServiceSetting)) {
    RL-Rec 'svc' @('name', $s.Name, 'relayiplist', (RL-Hex $s.RelayIpList), 'relayforauth', $s.RelayForAuth)
}

foreach ($s in $servers) {
    RL-Rec 'vs' @('name', $s.Name, 'comment', $s.ServerComment, 'relayiplist', (RL-Hex $s.RelayIpList),
        'relayforauth', $s.RelayForAuth, 'authflags', $s.AuthFlags, 'authanonymous', $s.AuthAnonymous,
        'authbasic', $s.AuthBasic, 'authntlm', $s.AuthNTLM, 'smarthost', $s.SmartHost, 'smarthosttype', $s.SmartHostType)
}

foreach ($d in @(Get-WmiObject -Namespace $ns -Class IIsSmtpDomainSetting)) {
    RL-Rec 'domain' @('name', $d.Name, 'routeaction', $d.RouteAction, 'relayforauth', $d.RelayForAuth, 'relayiplist', (RL-Hex $d.RelayIpList))
}

# IIS's own reading of each RelayIpList through ADSI (IIsIPSecurity object,
# windows-relay.md 1.4b): relaylock compares it with its decoding of the bytes.
# Needs IIS 6 Metabase Compatibility; failures are reported, not fatal.
$get = [Reflection.BindingFlags]'Public,Instance,GetProperty'
foreach ($s in $servers) {
    try {
        $de = New-Object DirectoryServices.DirectoryEntry(('IIS://localhost/' + [string]$s.Name))
        $ip = $de.Properties['RelayIpList'].Value
        if ($null -eq $ip) {
            RL-Rec 'adsi' @('name', $s.Name, 'present', 'False')
        } else {
            $t = $ip.GetType()
            $gbd = [bool]$t.InvokeMember('GrantByDefault', $get, $null, $ip, $null)
            $grant = @($t.InvokeMember('IPGrant', $get, $null, $ip, $null))
            $deny = @($t.InvokeMember('IPDeny', $get, $null, $ip, $null))
            RL-Rec 'adsi' @('name', $s.Name, 'present', 'True', 'grantbydefault', [string]$gbd,
                'ipgrant', ($grant -join "`n"), 'ipdeny', ($deny -join "`n"))
        }
    } catch {
        RL-Rec 'adsi' @('name', $s.Name, 'error', [string]$_.Exception.Message)
    }
}

RL-End 0
