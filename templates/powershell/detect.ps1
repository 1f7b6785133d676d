# relaylock detect: identify the mail platform of this Windows host.
# Name: detect
# Product: all (IIS-SMTP, Exchange 2000/2003, Exchange 2007 .. SE)
# Mode: read
# Idempotent: yes; it reads WMI, the registry and the service list and changes nothing.
# PowerShell 2.0 compatible. Records (decoded by remediate/detect.go, which
# also produces them for the lab with EncodeHostInfo):
#   host      computer domain os_caption os_version ps_version is64
#   exchange  generation major minor build_major build_minor roles [server_admin: v6 only]
#   service   name present state start_mode   (one per service of interest)
#   feature   name installed                  (only where ServerManager exists)
#   winrs     max_memory_mb source            (WinRM's MaxMemoryPerShellMB quota; source wsman,
#             registry or default: 150 for WinRM 2.0 (PowerShell 2.0), 1024 later)

function Read-RegValue([string]$Path, [string]$Name) {
    if (-not (Test-Path -LiteralPath $Path)) { return $null }
    $item = Get-ItemProperty -LiteralPath $Path -ErrorAction SilentlyContinue
    if ($null -eq $item) { return $null }
    $prop = $item.PSObject.Properties[$Name]
    if ($null -eq $prop) { return $null }
    return $prop.Value
}

# Host: Win32_OperatingSystem / Win32_ComputerSystem (WMI, present since
# Windows 2000); $PSVersionTable exists from PowerShell 2.0 on.
$os = Get-WmiObject -Class Win32_OperatingSystem
$cs = Get-WmiObject -Class Win32_ComputerSystem
$computer = [string]$env:COMPUTERNAME
$domain = [string]$cs.Domain
$caption = ([string]$os.Caption).Trim()
$osVersion = [string]$os.Version
$psVersion = $null
if ($null -ne $PSVersionTable) { $psVersion = $PSVersionTable.PSVersion.ToString() }
$is64 = ([IntPtr]::Size -eq 8)
RL-Rec 'host' @('computer', $computer, 'domain', $domain, 'os_caption', $caption, 'os_version', $osVersion, 'ps_version', $psVersion, 'is64', $is64)

# Exchange 2007 and later: <base>\Setup holds MsiProductMajor/Minor and
# MsiBuildMajor/Minor; each installed role is a <base>\<Name>Role subkey
# (docs/windows-relay.md section 4; CSS-Exchange Get-ExchangeBuildVersionInformation.ps1).
$exGen = $null
$exBase = $null
foreach ($gen in @('v15', 'v14', 'v8')) {
    if ($gen -eq 'v8') {
        $base = 'HKLM:\SOFTWARE\Microsoft\Exchange\v8.0'
    } else {
        $base = 'HKLM:\SOFTWARE\Microsoft\ExchangeServer\' + $gen
    }
    $probe = Read-RegValue ($base + '\Setup') 'MsiProductMajor'
    if ($null -ne $probe) {
        $exGen = $gen
        $exBase = $base
        break
    }
}
if ($null -ne $exGen) {
    $setup = $exBase + '\Setup'
    $major = Read-RegValue $setup 'MsiProductMajor'
    $minor = Read-RegValue $setup 'MsiProductMinor'
    $buildMajor = Read-RegValue $setup 'MsiBuildMajor'
    $buildMinor = Read-RegValue $setup 'MsiBuildMinor'
    $roles = @()
    foreach ($k in @(Get-ChildItem -LiteralPath $exBase -ErrorAction SilentlyContinue)) {
        $n = [string]$k.PSChildName
        if ($n.Length -gt 4 -and $n.EndsWith('Role')) { $roles += $n.Substring(0, $n.Length - 4) }
    }
    $roleList = ''
    if ($roles.Count -gt 0) { $roleList = [string]::Join("`n", [string[]]($roles | Sort-Object)) }
    RL-Rec 'exchange' @('generation', $exGen, 'major', $major, 'minor', $minor, 'build_major', $buildMajor, 'build_minor', $buildMinor, 'roles', $roleList)
} elseif (Test-Path -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Exchange\Setup') {
    # HKLM\SOFTWARE\Microsoft\Exchange\Setup is the Exchange 2000/2003 key,
    # but also that of Exchange 4.0-5.5 (KB 149205, KB 147374), and it may be
    # left behind by an uninstall. remediate/detect.go therefore also wants
    # the ExchangeServerAdmin value (the 2000/2003 install path, printed as
    # server_admin) or the MSExchangeSA service, and refuses builds below
    # 4417 (5.5 and older). The build number (NewestBuild: 4417 and up =
    # 2000, 6944 and up = 2003) is UNVERIFIED against a real host;
    # detect.go tolerates its absence.
    $exGen = 'v6'
    $major = $null
    $minor = $null
    $buildMajor = Read-RegValue 'HKLM:\SOFTWARE\Microsoft\Exchange\Setup' 'NewestBuild'
    $buildMinor = $null
    $roleList = ''
    $serverAdmin = Read-RegValue 'HKLM:\SOFTWARE\Microsoft\Exchange\Setup' 'ExchangeServerAdmin'
    RL-Rec 'exchange' @('generation', $exGen, 'major', $major, 'minor', $minor, 'build_major', $buildMajor, 'build_minor', $buildMinor, 'roles', $roleList, 'server_admin', $serverAdmin)
}

# Services (Win32_Service: State Running/Stopped/..., StartMode Auto/Manual/Disabled).
foreach ($svcName in @('SMTPSVC', 'MSExchangeTransport', 'MSExchangeFrontEndTransport', 'MSExchangeSA')) {
    $svc = Get-WmiObject -Class Win32_Service -Filter ("Name='" + $svcName + "'")
    $present = $false
    $state = $null
    $startMode = $null
    if ($null -ne $svc) {
        $present = $true
        $state = [string]$svc.State
        $startMode = [string]$svc.StartMode
    }
    RL-Rec 'service' @('name', $svcName, 'present', $present, 'state', $state, 'start_mode', $startMode)
}

# Features: the ServerManager module exists on Windows Server 2008 R2 and
# later (not on 2003/2008); where it is missing or fails, no feature
# records are printed and the features stay unknown.
$featureRows = @()
if ($null -ne (Get-Module -ListAvailable -Name ServerManager)) {
    try {
        Import-Module ServerManager
        foreach ($featName in @('SMTP-Server', 'Web-WMI')) {
            $feat = Get-WindowsFeature -Name $featName
            $installed = $false
            if ($null -ne $feat) { $installed = [bool]$feat.Installed }
            $featureRows += , @($featName, $installed)
        }
    } catch {
        $featureRows = @()
    }
}
foreach ($row in $featureRows) {
    $featName = $row[0]
    $installed = $row[1]
    RL-Rec 'feature' @('name', $featName, 'installed', $installed)
}

# WinRM's MaxMemoryPerShellMB limits this very process; WinRM 2.0 defaults to 150 MB, too
# little for the Exchange shell. The WSMan: drive reads the effective value (it talks to the
# local WinRM service, which may refuse from inside a remote shell); an administrator's value
# may also be in the registry (location UNVERIFIED); else the default for this WinRM version
# is reported as such.
$winrsMB = $null
$winrsSource = 'default'
try {
    $winrsMB = [int](Get-Item -Path 'WSMan:\localhost\Shell\MaxMemoryPerShellMB' -ErrorAction Stop).Value
    $winrsSource = 'wsman'
} catch {
    $winrsMB = Read-RegValue 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WSMAN\Shell' 'MaxMemoryPerShellMB'
    if ($null -ne $winrsMB) {
        $winrsSource = 'registry'
    } elseif ($null -ne $PSVersionTable -and $PSVersionTable.PSVersion.Major -le 2) {
        $winrsMB = 150
    } else {
        $winrsMB = 1024
    }
}
RL-Rec 'winrs' @('max_memory_mb', $winrsMB, 'source', $winrsSource)

RL-End 0
