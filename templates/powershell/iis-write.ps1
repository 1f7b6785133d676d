# iis-write: set RelayIpList and RelayForAuth on one IIS 6 SMTP virtual server.
# Product: IIS-SMTP. Mode: write.
# Idempotency: sets absolute values; running it again with the same parameters
# leaves the same state. Prints the values read back after Put(): svc (the service level),
# vs (WMI's value, which is the inherited one after NULL) and adsi (whether the server holds
# a value of its own, lib/iis-adsi.ps1).
# Parameters (data only):
#   server        WMI Name of the virtual server, e.g. SmtpSvc/1 (matched exactly, never put into a WQL filter)
#   relayiplist   NULL (unset the property), EMPTY (zero-length value) or the IPSECLIST blob in hex
#   relayforauth  integer written to RelayForAuth (0 off; -1 on, see remediate relayForAuthEnabled)
# Restoring NULL assigns $null and calls Put(): UNVERIFIED on real IIS. The untested
# alternative is ADSI: ([ADSI]'IIS://localhost/SmtpSvc/1').PutEx(1, 'RelayIpList', $null); SetInfo().
$name = [string]$P['server']
$ril = [string]$P['relayiplist']
$rfa = [string]$P['relayforauth']

if ($ril -ne 'NULL' -and $ril -ne 'EMPTY' -and $ril -notmatch '^([0-9A-Fa-f]{2})+$') {
    RL-Rec 'error' @('message', 'parameter relayiplist is not NULL, EMPTY or hex', 'kind', 'bad-parameter')
    RL-End 2
}
if ($rfa -notmatch '^-?[0-9]{1,10}$') {
    RL-Rec 'error' @('message', 'parameter relayforauth is not an integer', 'kind', 'bad-parameter')
    RL-End 2
}

# relaylock:include iis-wmi
$s = RL-IISFind 'IIsSmtpServerSetting' $name 'SMTP virtual server'

if ($ril -eq 'NULL') {
    $s.RelayIpList = $null
} elseif ($ril -eq 'EMPTY') {
    $s.RelayIpList = [byte[]]@()
} else {
    $s.RelayIpList = (RL-Bytes $ril)
}
$s.RelayForAuth = [int]$rfa
[void]$s.Put()

foreach ($v in @(Get-WmiObject -Namespace 'root\MicrosoftIISv2' -Class IIsSmtpServiceSetting)) {
    RL-Rec 'svc' @('name', $v.Name, 'relayiplist', (RL-Hex $v.RelayIpList), 'relayforauth', $v.RelayForAuth)
}
$s = RL-IISFind 'IIsSmtpServerSetting' $name 'SMTP virtual server'
RL-Rec 'vs' @('name', $s.Name, 'comment', $s.ServerComment, 'relayiplist', (RL-Hex $s.RelayIpList),
    'relayforauth', $s.RelayForAuth, 'authflags', $s.AuthFlags, 'authanonymous', $s.AuthAnonymous,
    'authbasic', $s.AuthBasic, 'authntlm', $s.AuthNTLM, 'smarthost', $s.SmartHost, 'smarthosttype', $s.SmartHostType)
# relaylock:include iis-adsi
RL-IISADSI ([string]$s.Name)
RL-End 0
