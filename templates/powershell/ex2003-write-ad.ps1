# ex2003-write-ad: set the relay list and authenticated relay of one Exchange 2000/2003
# SMTP virtual server in Active Directory (DS2MB then copies it into the metabase).
# Product: Exchange2003. Mode: write.
# Idempotency: sets absolute values; running it again with the same parameters leaves
# the same state (and notifies DS2MB again). Prints the values read back after CommitChanges().
# Parameters (data only; plus the second-hop credential of lib/hop-credential.ps1, used for every LDAP bind):
#   dn               distinguished name of the protocolCfgSMTPServer object (from ex2003-read-ad)
#   relayiplistattr  LDAP name of the relay-list attribute (UNVERIFIED name, see remediate.Ex2003RelayIpListAttr)
#   relayiplist      NULL (clear the attribute), EMPTY (zero-length value, UNVERIFIED in AD) or the IPSECLIST blob in hex
#   relayforauth     TRUE or FALSE (msExchSmtpRelayForAuth, written as a .NET Boolean: attribute syntax UNVERIFIED)
#   dc               domain controller to write to (the one ex2003-read-ad reported, which DS2MB reads
#                    unless the operator chose another with --dc); empty binds serverless (the locator's DC)
# The IPSECLIST blob is written as one binary value; whether AD accepts a zero-length value
# (EMPTY) is UNVERIFIED. An unknown DN prints kind not-found (0x80072030).
$dn = [string]$P['dn']
$attr = [string]$P['relayiplistattr']
$ril = [string]$P['relayiplist']
$rfa = [string]$P['relayforauth']
$dc = [string]$P['dc']

if ($attr -notmatch '^[A-Za-z][A-Za-z0-9-]{0,63}$') {
    RL-Rec 'error' @('message', 'parameter relayiplistattr is not an LDAP attribute name', 'kind', 'bad-parameter')
    RL-End 2
}
if ($ril -ne 'NULL' -and $ril -ne 'EMPTY' -and $ril -notmatch '^([0-9A-Fa-f]{2})+$') {
    RL-Rec 'error' @('message', 'parameter relayiplist is not NULL, EMPTY or hex', 'kind', 'bad-parameter')
    RL-End 2
}
if ($rfa -ne 'TRUE' -and $rfa -ne 'FALSE') {
    RL-Rec 'error' @('message', 'parameter relayforauth is not TRUE or FALSE', 'kind', 'bad-parameter')
    RL-End 2
}
if ($dn -notmatch '^CN=' -or $dn.Contains('/')) {
    RL-Rec 'error' @('message', 'parameter dn is not a distinguished name', 'kind', 'bad-parameter')
    RL-End 2
}
if ($dc -notmatch '^([A-Za-z0-9][A-Za-z0-9.-]{0,254})?$') {
    RL-Rec 'error' @('message', 'parameter dc is not a host name', 'kind', 'bad-parameter')
    RL-End 2
}
# From here on $dn is the ADsPath tail: [dc/]distinguished name.
if ($dc -ne '') { $dn = $dc + '/' + $dn }

# relaylock:include ldap-values
# relaylock:include hop-credential

try {
    $o = RL-DirEntry ('LDAP://' + $dn)
    $o.RefreshCache()
} catch {
    # 0x80072030 "There is no such object on the server." (by number:
    # messages are translated).
    if ((RL-HResult $_.Exception) -eq '0x80072030') {
        RL-ErrRec $_ 'not-found' $null
        RL-End 4
    }
    RL-ErrRec $_ 'ad-unavailable' $null
    RL-End 5
}

if ($ril -eq 'NULL') {
    $o.Properties[$attr].Clear()
} elseif ($ril -eq 'EMPTY') {
    $o.Properties[$attr].Value = [byte[]]@()
} else {
    $o.Properties[$attr].Value = (RL-Bytes $ril)
}
$o.Properties['msExchSmtpRelayForAuth'].Value = ($rfa -eq 'TRUE')
$o.CommitChanges()
$o.RefreshCache()

RL-Rec 'advs' @('dn', [string]$o.Properties['distinguishedName'].Value, 'relayiplist', (RL-Hex (FirstBytes $o.Properties[$attr])),
    'relayforauth', (First $o.Properties['msExchSmtpRelayForAuth']), 'authflags', (First $o.Properties['msExchAuthenticationFlags']),
    'smarthost', (First $o.Properties['msExchSmtpSmartHost']))
RL-End 0
