# iis-write-domain: set RouteAction of one IIS 6 SMTP domain (remote domain relay flag).
# Product: IIS-SMTP. Mode: write.
# Idempotency: sets an absolute value; running it again with the same parameters
# leaves the same state. Prints the values read back after Put().
# Parameters (data only):
#   domain       WMI Name of the domain object, e.g. SmtpSvc/1/Domain/example.com (matched exactly)
#   routeaction  integer written to RouteAction
$ns = 'root\MicrosoftIISv2'
$name = [string]$P['domain']
$ra = [string]$P['routeaction']

if ($ra -notmatch '^[0-9]{1,10}$') {
    RL-Rec 'error' @('message', 'parameter routeaction is not a non-negative integer', 'kind', 'bad-parameter')
    RL-End 2
}

function Find-Domain {
    foreach ($x in @(Get-WmiObject -Namespace $ns -Class IIsSmtpDomainSetting)) {
        if ([string]$x.Name -eq $name) { return $x }
    }
    return $null
}

try {
    $d = Find-Domain
} catch {
    $m = [string]$_.Exception.Message
    if ($m -match 'Invalid namespace') {
        RL-Rec 'error' @('message', ('Invalid namespace "' + $ns + '" (' + $m.Trim() + ')'), 'type', $_.Exception.GetType().FullName, 'kind', 'feature-missing', 'feature', 'Web-WMI')
        RL-End 3
    }
    throw
}
if ($null -eq $d) {
    RL-Rec 'error' @('message', ('no SMTP domain named ' + $name), 'kind', 'not-found')
    RL-End 4
}

$d.RouteAction = [int]$ra
[void]$d.Put()

$d = Find-Domain
RL-Rec 'domain' @('name', $d.Name, 'routeaction', $d.RouteAction, 'relayforauth', $d.RelayForAuth, 'relayiplist', (RL-Hex $d.RelayIpList))
RL-End 0
