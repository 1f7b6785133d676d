# Name: service-restart
# Product: IIS-SMTP, Exchange2003, Exchange
# Mode: write (restarts one mail service; relay settings are not changed)
# Idempotent: yes; restarting a running service again only restarts it.
# Params: service = SMTPSVC | MSExchangeTransport | MSExchangeFrontEndTransport
$name = [string]$P['service']
$allowed = @('SMTPSVC', 'MSExchangeTransport', 'MSExchangeFrontEndTransport')
if ($allowed -notcontains $name) {
    RL-Rec 'error' @('message', ('refusing to restart service: ' + $name))
    RL-End 2
}
$svc = Get-Service -Name $name
Restart-Service -Name $name -Force
$svc = Get-Service -Name $name
RL-Rec 'service' @('name', $name, 'state', [string]$svc.Status)
RL-End 0
