# hop-check: can this WinRS process reach Active Directory or the Exchange shell (the second hop)?
# Product: Exchange2003, Exchange 2007 .. SE (not IIS SMTP, not Edge: no second hop there).
# Mode: read. Idempotent: binds or connects, reads one attribute, changes nothing.
# PowerShell 2.0 compatible. Run by remediate.CheckSecondHop before any read.
# Parameters (data only):
#   target   ad           Exchange 2000/2003: bind to RootDSE and then to the configuration naming
#                         context (RootDSE alone answers anonymous binds, so it proves nothing)
#            exchange2007 Exchange 2007: the runas /netonly logon (RL-NetOnly), then the same AD bind
#                         from the impersonating thread, as the snap-in will do
#            exchange     Exchange 2010+: open and close the Exchange remote PowerShell session
#                         (http://<fqdn>/PowerShell/, Kerberos) without importing it
#   dc       the domain controller the run reads and writes AD through ('' or absent: none named). The AD
#            binds go to it (LDAP://<dc>/RootDSE, LDAP://<dc>/<configuration NC>), so the check proves the
#            DC the write will use; without it they are serverless (the DC locator picks the site's DC).
#   the second-hop credential (lib/hop-credential.ps1)
# Records:
#   hop       method, explicit (True/False), dc (the DC that answered the AD bind, when known)
#   hoperror  what (what could not be reached), message, type, hresult, explicit; exit code 6
# relaylock:include hop-credential
# relaylock:include hop-netonly

$target = [string]$P['target']
$dcName = [string]$P['dc']
if ($dcName -notmatch '^([A-Za-z0-9][A-Za-z0-9.-]{0,254})?$') {
    RL-Rec 'error' @('message', 'parameter dc is not a host name', 'kind', 'bad-parameter')
    RL-End 2
}
# LDAP path prefix: 'LDAP://DC/' for a named domain controller, 'LDAP://' (serverless) otherwise.
$rlhLdap = 'LDAP://'
$rlhOn = ''
if ($dcName -ne '') { $rlhLdap = 'LDAP://' + $dcName + '/'; $rlhOn = ' on domain controller ' + $dcName }

function RLH-Fail([string]$what, $ex) {
    RL-Rec 'hoperror' @('what', $what, 'message', [string]$ex.Message, 'type', $ex.GetType().FullName,
        'hresult', (RL-HResult $ex), 'explicit', $rlHopExplicit)
    RL-End 6
}

# RLH-AD binds the configuration naming context, on the named DC when there is one ($rlhLdap),
# and returns the DC that answered.
function RLH-AD([bool]$explicit) {
    if ($explicit) {
        $root = RL-DirEntry ($rlhLdap + 'RootDSE')
    } else {
        $root = New-Object DirectoryServices.DirectoryEntry(($rlhLdap + 'RootDSE'))
    }
    $cfg = [string]$root.Properties['configurationNamingContext'].Value
    $dc = [string]$root.Properties['dnsHostName'].Value
    if ($explicit) {
        $e = RL-DirEntry ($rlhLdap + $cfg)
    } else {
        $e = New-Object DirectoryServices.DirectoryEntry(($rlhLdap + $cfg))
    }
    $e.RefreshCache([string[]]@('distinguishedName'))
    return $dc
}

switch ($target) {
    'ad' {
        try { $dc = RLH-AD $rlHopExplicit } catch { RLH-Fail ('Active Directory (LDAP' + $rlhOn + ')') $_.Exception }
        $m = 'ldap-process'
        if ($rlHopExplicit) { $m = 'ldap-explicit' }
        RL-Rec 'hop' @('method', $m, 'explicit', $rlHopExplicit, 'dc', $dc)
    }
    'exchange2007' {
        $m = 'ldap-process'
        try {
            if (RL-NetOnly) { $m = 'netonly' }
        } catch {
            RLH-Fail 'a runas /netonly logon (LogonUser LOGON32_LOGON_NEW_CREDENTIALS)' $_.Exception
        }
        try { $dc = RLH-AD $false } catch { RLH-Fail ('Active Directory (LDAP' + $rlhOn + ', as the Exchange 2007 snap-in will)') $_.Exception }
        RL-Rec 'hop' @('method', $m, 'explicit', $rlHopExplicit, 'dc', $dc)
    }
    'exchange' {
        $uri = RL-ShellUri
        try {
            if ($rlHopExplicit) {
                $s = New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri $uri -Credential (RL-HopCred) -Authentication Kerberos
                $m = 'remote-explicit'
            } else {
                $s = New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri $uri -Authentication Kerberos
                $m = 'remote-process'
            }
            Remove-PSSession $s
        } catch {
            RLH-Fail ('the Exchange shell (' + $uri + ')') $_.Exception
        }
        RL-Rec 'hop' @('method', $m, 'explicit', $rlHopExplicit, 'dc', '')
    }
    default {
        RL-Rec 'error' @('message', 'parameter target is not ad, exchange2007 or exchange', 'kind', 'bad-parameter')
        RL-End 2
    }
}
RL-End 0
