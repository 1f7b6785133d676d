# BEGIN iis-wmi (templates/powershell/lib/iis-wmi.ps1, included by the iis-write scripts)
# RL-IISFind returns the IIS 6 metabase object of WMI class $Class whose Name
# is $Name. Objects are fetched whole (a -Property query breaks Put(),
# docs/windows-relay.md 1.4) and the name is compared as data, never put into a
# WQL filter. A missing root\MicrosoftIISv2 namespace (no Web-WMI, told by
# its HRESULT, not its message) ends the script with the feature-missing
# error (exit 3); no such object with
# not-found (exit 4), naming it as $What.
function RL-IISFind([string]$Class, [string]$Name, [string]$What) {
    $rlNs = 'root\MicrosoftIISv2'
    try {
        $rlAll = @(Get-WmiObject -Namespace $rlNs -Class $Class)
    } catch {
        # 0x8004100E WBEM_E_INVALID_NAMESPACE: no IIS 6 WMI Compatibility.
        if ((RL-HResult $_.Exception) -eq '0x8004100E') {
            RL-ErrRec $_ 'feature-missing' @('feature', 'Web-WMI', 'namespace', $rlNs)
            RL-End 3
        }
        throw
    }
    foreach ($x in $rlAll) {
        if ([string]$x.Name -eq $Name) { return $x }
    }
    RL-Rec 'error' @('message', ('no ' + $What + ' named ' + $Name), 'kind', 'not-found')
    RL-End 4
}
# END iis-wmi
