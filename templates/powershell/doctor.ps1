# doctor: read-only checks of what relaylock needs on this host (relaylock doctor).
# Product: all (IIS-SMTP, Exchange 2000/2003, Exchange 2007 .. SE)
# Mode: read
# Idempotency: read-only, changes nothing; safe to run any number of times.
# PowerShell 2.0 compatible. Parameters (data only):
#   blob   the stdin round trip: a long random text; the script prints its length and SHA-256
# Records (decoded by remediate/doctor):
#   echo     length sha256                       (of blob, as UTF-8)
#   ps       version clr is64 codepage os_version
#   quota    name value hresult                  (WSMan:\localhost settings; value ~ when unreadable)
#   feature  name present hresult                (Web-WMI: root\MicrosoftIISv2 exists; Web-Metabase: IIS://localhost/SmtpSvc binds)
#   ad       joined ok dn hresult message        (an LDAP read of the domain from this session: the second hop)
$blob = [string]$P['blob']
$sha = [Security.Cryptography.SHA256]::Create()
$hash = ([BitConverter]::ToString($sha.ComputeHash([Text.Encoding]::UTF8.GetBytes($blob)))) -replace '-', ''
RL-Rec 'echo' @('length', $blob.Length, 'sha256', $hash.ToLower())

$psVersion = $null
$clr = $null
if ($null -ne $PSVersionTable) {
    $psVersion = $PSVersionTable.PSVersion.ToString()
    $clr = $PSVersionTable.CLRVersion.ToString()
}
RL-Rec 'ps' @('version', $psVersion, 'clr', $clr, 'is64', ([IntPtr]::Size -eq 8),
    'codepage', [Console]::OutputEncoding.CodePage, 'os_version', [Environment]::OSVersion.Version.ToString())

# WinRM quotas: MaxMemoryPerShellMB (150 under WinRM 2.0, 1024 later; over
# it the shell is ended) and MaxEnvelopeSizekb (the largest request).
foreach ($q in @('Shell\MaxMemoryPerShellMB', 'MaxEnvelopeSizekb')) {
    $name = $q.Substring($q.LastIndexOf('\') + 1)
    try {
        $v = (Get-Item -LiteralPath ('WSMan:\localhost\' + $q)).Value
        RL-Rec 'quota' @('name', $name, 'value', [string]$v, 'hresult', $null)
    } catch {
        RL-Rec 'quota' @('name', $name, 'value', $null, 'hresult', (RL-HResult $_.Exception))
    }
}

# IIS 6 WMI Compatibility (Web-WMI): the namespace root\MicrosoftIISv2.
try {
    $found = $false
    foreach ($n in @(Get-WmiObject -Namespace 'root' -Class '__NAMESPACE')) {
        if ([string]$n.Name -eq 'MicrosoftIISv2') { $found = $true }
    }
    RL-Rec 'feature' @('name', 'Web-WMI', 'present', $found, 'hresult', $null)
} catch {
    RL-Rec 'feature' @('name', 'Web-WMI', 'present', $false, 'hresult', (RL-HResult $_.Exception))
}

# IIS 6 Metabase Compatibility (Web-Metabase): ADSI IIS://localhost/SmtpSvc.
try {
    $de = New-Object DirectoryServices.DirectoryEntry('IIS://localhost/SmtpSvc')
    $de.RefreshCache()
    RL-Rec 'feature' @('name', 'Web-Metabase', 'present', $true, 'hresult', $null)
} catch {
    RL-Rec 'feature' @('name', 'Web-Metabase', 'present', $false, 'hresult', (RL-HResult $_.Exception))
}

# The second hop: this process comes from a network logon. RootDSE answers
# anyone; reading the domain object needs credentials that reach the DC.
$cs = Get-WmiObject -Class Win32_ComputerSystem
if (-not [bool]$cs.PartOfDomain) {
    RL-Rec 'ad' @('joined', $false, 'ok', $false, 'dn', $null, 'hresult', $null, 'message', $null)
} else {
    try {
        $rootDse = New-Object DirectoryServices.DirectoryEntry('LDAP://RootDSE')
        $dn = [string]$rootDse.Properties['defaultNamingContext'].Value
        $domainObj = New-Object DirectoryServices.DirectoryEntry(('LDAP://' + $dn))
        $domainObj.RefreshCache(@('distinguishedName'))
        RL-Rec 'ad' @('joined', $true, 'ok', $true, 'dn', $dn, 'hresult', $null, 'message', $null)
    } catch {
        RL-Rec 'ad' @('joined', $true, 'ok', $false, 'dn', $null, 'hresult', (RL-HResult $_.Exception), 'message', [string]$_.Exception.Message)
    }
}

RL-End 0
