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

trap {
    RL-Rec 'error' @('message', $_.Exception.Message, 'type', $_.Exception.GetType().FullName, 'line', $_.InvocationInfo.ScriptLineNumber)
    RL-End 1
}

[Console]::Out.WriteLine('BEGIN ' + $P['_nonce'])
