# iis-write-domain: set RouteAction of one IIS 6 SMTP domain (remote domain relay flag).
# Product: IIS-SMTP. Mode: write.
# Idempotency: sets an absolute value; running it again with the same parameters
# leaves the same state. Prints the values read back after Put().
# Parameters (data only):
#   domain       WMI Name of the domain object, e.g. SmtpSvc/1/Domain/example.com (matched exactly)
#   routeaction  integer written to RouteAction
$name = [string]$P['domain']
$ra = [string]$P['routeaction']

if ($ra -notmatch '^[0-9]{1,10}$') {
    RL-Rec 'error' @('message', 'parameter routeaction is not a non-negative integer', 'kind', 'bad-parameter')
    RL-End 2
}

# relaylock:include iis-wmi
$d = RL-IISFind 'IIsSmtpDomainSetting' $name 'SMTP domain'

$d.RouteAction = [int]$ra
[void]$d.Put()

$d = RL-IISFind 'IIsSmtpDomainSetting' $name 'SMTP domain'
RL-Rec 'domain' @('name', $d.Name, 'routeaction', $d.RouteAction, 'relayforauth', $d.RelayForAuth, 'relayiplist', (RL-Hex $d.RelayIpList))
RL-End 0
