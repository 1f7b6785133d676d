# iis-read: read the relay settings of the IIS 6 SMTP service.
# Product: IIS-SMTP (also the metabase view of Exchange2003). Mode: read.
# Idempotency: read-only, changes nothing; safe to run any number of times.
# Parameters: none.
# Records (decoded by remediate/iis.go DecodeIISState):
#   service (SMTPSVC), guest (local RID-501 account), svc (IIsSmtpServiceSetting),
#   vs (IIsSmtpServerSetting: WMI's value, possibly inherited), domain (IIsSmtpDomainSetting),
#   adsi (ADSI view of each server's and the service level's RelayIpList, and whether the node
#   holds a value of its own), error.
# Objects are fetched whole (never Get-WmiObject -Property), see docs/windows-relay.md 1.4.
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

# IIS's own reading of each RelayIpList through ADSI, and whether each node
# holds a value of its own or inherits /LM/SmtpSvc's (docs/windows-relay.md 1.1,
# 1.4): relaylock compares effective values and records inheritance.
# relaylock:include iis-adsi
foreach ($s in $servers) {
    RL-IISADSI ([string]$s.Name)
}
foreach ($s in @(Get-WmiObject -Namespace $ns -Class IIsSmtpServiceSetting)) {
    RL-IISADSI ([string]$s.Name)
}

RL-End 0
