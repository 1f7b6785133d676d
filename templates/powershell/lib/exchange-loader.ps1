# BEGIN exchange-loader (templates/powershell/lib/exchange-loader.ps1, included by every exchange-*.ps1)
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
