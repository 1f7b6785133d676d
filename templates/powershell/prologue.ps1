# relaylock prologue: prepended to every script before it is sent on stdin.
# Product: all. Mode: none (defines helpers only).
# PowerShell 2.0 compatible. $P holds the parameters (set by the bootstrap).
# Output contract: remediate/psframe (BEGIN / R records / END), ASCII only.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$WarningPreference = 'SilentlyContinue'
$VerbosePreference = 'SilentlyContinue'

function RL-Enc($v) {
    if ($null -eq $v) { return '~' }
    return [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$v))
}

function RL-Rec([string]$Type, [object[]]$Fields) {
    $line = 'R ' + $Type
    for ($i = 0; $i + 1 -lt $Fields.Count; $i += 2) {
        $line += ' ' + $Fields[$i] + '=' + (RL-Enc $Fields[$i + 1])
    }
    [Console]::Out.WriteLine($line)
}

function RL-Hex($bytes) {
    if ($null -eq $bytes) { return $null }
    $b = [byte[]]$bytes
    if ($b.Length -eq 0) { return '' }
    return ([BitConverter]::ToString($b)) -replace '-', ''
}

function RL-Bytes([string]$hex) {
    $n = $hex.Length / 2
    $b = New-Object byte[] $n
    for ($i = 0; $i -lt $n; $i++) { $b[$i] = [Convert]::ToByte($hex.Substring(2 * $i, 2), 16) }
    return ,$b
}

function RL-End([int]$Code) {
    [Console]::Out.WriteLine('END ' + $P['_nonce'] + ' ' + $Code)
    [Console]::Out.Flush()
    exit $Code
}

# RL-HResult names the failure of an exception chain by number, the same in
# every Windows language (messages are translated; relaylock classifies
# errors by this, never by message text): 0xXXXXXXXX, the ErrorCode of the
# first COM/Win32/WMI exception in the chain (COMException and
# DirectoryServicesCOMException: the HRESULT, e.g. 0x80072030 "no such
# object"; Win32Exception: HRESULT_FROM_WIN32 of NativeErrorCode;
# ManagementException: the WBEM status, e.g. 0x8004100E invalid namespace),
# else the innermost exception's HResult (protected before .NET 4.5, so
# read by reflection; UnauthorizedAccessException is 0x80070005).
# PowerShell 2.0 hands a catch block an ActionPreferenceStopException when
# $ErrorActionPreference = 'Stop' turned an ordinary error into a
# terminating one; the original error is its ErrorRecord (RL-Unwrap).
function RL-HResult($Exception) {
    $e = RL-Unwrap $Exception
    $last = $null
    while ($null -ne $e) {
        $tn = $e.GetType().FullName
        if ($tn -eq 'System.ComponentModel.Win32Exception') {
            return ('0x{0:X8}' -f (0x80070000 -bor ([int]$e.NativeErrorCode -band 0xFFFF)))
        }
        if ($e -is [Runtime.InteropServices.ExternalException] -or $tn -eq 'System.Management.ManagementException') {
            return ('0x{0:X8}' -f [int]$e.ErrorCode)
        }
        $last = $e
        $e = $e.InnerException
    }
    if ($null -eq $last) { return $null }
    $hp = [Exception].GetProperty('HResult', [Reflection.BindingFlags]'Public,NonPublic,Instance')
    return ('0x{0:X8}' -f [int]$hp.GetValue($last, $null))
}

# RL-Unwrap returns the original exception behind PowerShell 2.0's
# ActionPreferenceStopException, else the exception itself.
function RL-Unwrap($Exception) {
    $e = $Exception
    for ($i = 0; $i -lt 4 -and $null -ne $e; $i++) {
        if ($e.GetType().FullName -ne 'System.Management.Automation.ActionPreferenceStopException') { break }
        $er = $e.ErrorRecord
        if ($null -eq $er -or $null -eq $er.Exception -or [object]::ReferenceEquals($er.Exception, $e)) { break }
        $e = $er.Exception
    }
    return $e
}

# RL-ErrRec prints the error record for a caught ErrorRecord: the
# (translated) message for people, and for relaylock the exception type,
# the innermost exception type, the HRESULT and PowerShell's
# FullyQualifiedErrorId, none of which is translated.
function RL-ErrRec($Err, [string]$Kind, [object[]]$More) {
    $ex = $Err
    $fqid = $null
    $line = $null
    if ($Err -is [Management.Automation.ErrorRecord]) {
        $ex = $Err.Exception
        $fqid = [string]$Err.FullyQualifiedErrorId
        if ($null -ne $Err.InvocationInfo) { $line = $Err.InvocationInfo.ScriptLineNumber }
        $orig = RL-Unwrap $ex
        if (-not [object]::ReferenceEquals($orig, $ex)) {
            # PowerShell 2.0: report the original error, not the stop.
            if ($null -ne $ex.ErrorRecord) { $fqid = [string]$ex.ErrorRecord.FullyQualifiedErrorId }
            $ex = $orig
        }
    }
    $inner = $ex
    while ($null -ne $inner.InnerException) { $inner = $inner.InnerException }
    $f = @('message', [string]$ex.Message, 'type', $ex.GetType().FullName, 'inner', $inner.GetType().FullName,
        'hresult', (RL-HResult $ex), 'fqid', $fqid, 'line', $line)
    if ($Kind -ne '') { $f += @('kind', $Kind) }
    if ($null -ne $More) { $f += $More }
    RL-Rec 'error' $f
}

trap {
    RL-ErrRec $_ '' $null
    RL-End 1
}

[Console]::Out.WriteLine('BEGIN ' + $P['_nonce'])
