# BEGIN iis-adsi (templates/powershell/lib/iis-adsi.ps1, included by iis-read and iis-write)
# RL-IISADSI prints the "adsi" record of one metabase node, named as WMI names it (SmtpSvc/1,
# or SmtpSvc for the service level): IIS's own reading of its RelayIpList through ADSI (the
# IIsIPSecurity object, docs/windows-relay.md 1.4), and "own": whether the node holds a value of
# its own. RelayIpList is inheritable (attributes inherit | reference, RelayIpList Metabase
# Property): a virtual server without a value enforces /LM/SmtpSvc's, and WMI may report that
# inherited value as the server's. The IIS ADSI method GetDataPaths lists the nodes at or
# below this one where the property is set; MD_ERROR_DATA_NOT_FOUND (0x800CC801) means none.
# "own" is $null when that could not be learnt. Needs IIS 6 Metabase Compatibility; failures
# are reported in the record (field error), not fatal.
function RL-IISNode([string]$Path) {
    return (($Path -replace '^(?i)(IIS://[^/]+|/LM)', '').TrimEnd('/'))
}

function RL-IISADSI([string]$Name) {
    $rlGet = [Reflection.BindingFlags]'Public,Instance,GetProperty'
    try {
        $de = New-Object DirectoryServices.DirectoryEntry(('IIS://localhost/' + $Name))
        $own = $null
        try {
            $self = RL-IISNode ([string]$de.Path)
            $own = 'False'
            foreach ($dp in @($de.Invoke('GetDataPaths', @('RelayIpList', 0)))) {
                if ((RL-IISNode ([string]$dp)) -eq $self) { $own = 'True' }
            }
        } catch {
            $own = $null
            $e = $_.Exception
            while ($null -ne $e) {
                if ($e -is [Runtime.InteropServices.ExternalException] -and ('{0:X8}' -f $e.ErrorCode) -eq '800CC801') { $own = 'False' }
                $e = $e.InnerException
            }
        }
        $ip = $de.Properties['RelayIpList'].Value
        if ($null -eq $ip) {
            RL-Rec 'adsi' @('name', $Name, 'own', $own, 'present', 'False')
        } else {
            $t = $ip.GetType()
            $gbd = [bool]$t.InvokeMember('GrantByDefault', $rlGet, $null, $ip, $null)
            $grant = @($t.InvokeMember('IPGrant', $rlGet, $null, $ip, $null))
            $deny = @($t.InvokeMember('IPDeny', $rlGet, $null, $ip, $null))
            RL-Rec 'adsi' @('name', $Name, 'own', $own, 'present', 'True', 'grantbydefault', [string]$gbd,
                'ipgrant', ($grant -join "`n"), 'ipdeny', ($deny -join "`n"))
        }
    } catch {
        RL-Rec 'adsi' @('name', $Name, 'error', [string]$_.Exception.Message)
    }
}
# END iis-adsi
