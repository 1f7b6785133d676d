# BEGIN exchange-loader (templates/powershell/lib/exchange-loader.ps1, included by every
# exchange-*.ps1 after hop-credential). Loads the Exchange cmdlets into this WinRS powershell.exe
# (docs/windows-relay.md 3.4 and 6; after microsoft/CSS-Exchange Shared/Confirm-ExchangeShell.ps1):
#   - refuse a 32-bit process (CSS checks Is64BitProcess, .NET 4; [IntPtr]::Size on PS 2.0);
#   - Edge: the snap-ins of exShell.psc1 + Exchange.ps1 (AD LDS is local: no second hop);
#   - 2007: the Admin snap-in, the supported way there; its cmdlets take no credential, so with
#     an explicit credential the thread first impersonates a runas /netonly logon (RL-NetOnly);
#   - 2010+ with an explicit credential: New-PSSession -ConfigurationName Microsoft.Exchange
#     -ConnectionUri http://<fqdn>/PowerShell/ -Credential -Authentication Kerberos, then
#     Import-PSSession of the cmdlets relaylock uses (fewer proxies, less memory under
#     WinRM 2.0's MaxMemoryPerShellMB);
#   - 2010+ without one: as CSS-Exchange does, RemoteExchange.ps1 then Connect-ExchangeServer
#     -Auto -ClientApplication:ManagementShell with $ErrorActionPreference loosened while
#     loading; if that fails, the local snap-in with a warning record. Microsoft supports the
#     bare snap-in on 2010+ for *-TransportAgent only ("may result in irreparable damage"):
#     $rlLoader is then 'snapin' and exchange-write refuses unless told allow_snapin=yes.
# Then the cheap check of CSS-Exchange (it runs Get-EventLogLevel; relaylock runs
# Get-ExchangeServer for this server, which needs no extra RBAC role) that also pins the
# domain controller: $P['dc'] when given, else the OriginatingServer of this first read.
# Every later cmdlet gets @rlDCArg (-DomainController), so one run reads and writes one DC.
# Write-Host is shadowed (for the rest of this short-lived process: relaylock's scripts never
# use it) so the loaders' banners cannot break the result frame on stdout.
$rlLoader = ''
$rlCmds = @('Get-ExchangeServer', 'Get-ReceiveConnector', 'New-ReceiveConnector', 'Set-ReceiveConnector', 'Remove-ReceiveConnector',
    'Get-ADPermission', 'Add-ADPermission', 'Remove-ADPermission', 'Get-AcceptedDomain', 'New-AcceptedDomain', 'Set-AcceptedDomain', 'Remove-AcceptedDomain')

function RLX-LoadFail([string]$what, $ex, [string]$kind) {
    RL-Rec 'error' @('message', ('Exchange Management Shell could not be loaded: ' + $what + ': ' + [string]$ex.Message),
        'type', $ex.GetType().FullName, 'hresult', (RL-HResult $ex), 'kind', $kind, 'explicit', $rlHopExplicit)
    RL-End 3
}

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
    $rlStep = 'Add-PSSnapin'
    try {
        if ($rlKey -eq '') {
            $rlLoader = 'snapin-2007'
            $rlStep = 'runas /netonly logon (LogonUser LOGON32_LOGON_NEW_CREDENTIALS)'
            if (RL-NetOnly) { $rlLoader = 'snapin-2007-netonly' }
            $rlStep = 'Add-PSSnapin Microsoft.Exchange.Management.PowerShell.Admin'
            Add-PSSnapin Microsoft.Exchange.Management.PowerShell.Admin
        } else {
            $rlInstall = $env:ExchangeInstallPath
            if (-not $rlInstall) { $rlInstall = (Get-ItemProperty ($rlKey + '\Setup')).MsiInstallPath }
            if (Test-Path ($rlKey + '\EdgeTransportRole')) {
                [xml]$rlPsc = Get-Content (Join-Path $rlInstall 'Bin\exShell.psc1')
                foreach ($s in @($rlPsc.PSConsoleFile.PSSnapIns.PSSnapIn)) { Add-PSSnapin $s.Name }
                . (Join-Path $rlInstall 'bin\Exchange.ps1') | Out-Null
                $rlLoader = 'edge'
            } elseif ($rlHopExplicit) {
                $rlUri = RL-ShellUri
                $rlStep = 'New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri ' + $rlUri + ' -Authentication Kerberos -Credential ' + $rlHopUser
                $rlSession = New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri $rlUri -Credential (RL-HopCred) -Authentication Kerberos
                $rlStep = 'Import-PSSession'
                Import-PSSession $rlSession -CommandName $rlCmds -DisableNameChecking -AllowClobber | Out-Null
                $rlLoader = 'remote-explicit'
            } else {
                $rlStep = 'Connect-ExchangeServer -Auto -ClientApplication:ManagementShell'
                $rlEAP = $ErrorActionPreference
                $ErrorActionPreference = 'Continue'
                $rlFirst = ''
                try {
                    . (Join-Path $rlInstall 'bin\RemoteExchange.ps1') | Out-Null
                    Connect-ExchangeServer -Auto -ClientApplication:ManagementShell | Out-Null
                } catch {
                    $rlFirst = [string]$_.Exception.Message
                }
                $ErrorActionPreference = $rlEAP
                if ($null -ne (Get-Command Get-ReceiveConnector -ErrorAction SilentlyContinue)) {
                    $rlLoader = 'remote'
                } else {
                    if ($rlFirst -eq '') { $rlFirst = 'it did not import the Exchange cmdlets' }
                    $rlSnap = 'Microsoft.Exchange.Management.PowerShell.SnapIn'
                    if ($rlKey -like '*v14') { $rlSnap = 'Microsoft.Exchange.Management.PowerShell.E2010' }
                    $rlStep = 'Add-PSSnapin ' + $rlSnap
                    Add-PSSnapin $rlSnap
                    $rlLoader = 'snapin'
                    RL-Rec 'warning' @('message', ('Connect-ExchangeServer failed (' + $rlFirst + '); loaded the local snap-in ' + $rlSnap + ' instead, which Microsoft supports for *-TransportAgent cmdlets only: relaylock reads through it but refuses to write through it unless --force'))
                }
            }
        }
    } catch {
        RLX-LoadFail $rlStep $_.Exception 'load'
    }
}

$rlDC = [string]$P['dc']
if ($rlDC -ne '' -and $rlDC -notmatch '^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$') {
    RL-Rec 'error' @('message', 'parameter dc is not a host name', 'kind', 'bad-parameter')
    RL-End 2
}
$rlDCArg = @{}
if ($rlDC -ne '' -and $rlLoader -ne 'edge') { $rlDCArg['DomainController'] = $rlDC }
try {
    $rlExServer = Get-ExchangeServer -Identity $env:COMPUTERNAME @rlDCArg
} catch {
    RLX-LoadFail 'the shell loaded but cannot read Active Directory (Get-ExchangeServer)' $_.Exception 'ad'
}
if ($rlDC -eq '' -and $rlLoader -ne 'edge') {
    $rlDC = [string]$rlExServer.OriginatingServer
    if ($rlDC -ne '') { $rlDCArg['DomainController'] = $rlDC }
}
# END exchange-loader
