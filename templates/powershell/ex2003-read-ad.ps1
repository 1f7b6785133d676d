# ex2003-read-ad: read the Exchange 2000/2003 SMTP virtual servers from Active Directory.
# Product: Exchange2003. Mode: read.
# Idempotency: read-only, changes nothing; safe to run any number of times.
# Parameters (data only; plus the second-hop credential of lib/hop-credential.ps1, used for every LDAP bind):
#   relayiplistattr  LDAP name of the relay-list attribute (remediate.Ex2003RelayIpListAttr; the name is UNVERIFIED)
# Records (decoded by remediate/exchange2003.go):
#   advs   dn relayiplist relayforauth authflags smarthost   (one per protocolCfgSMTPServer object)
#   error  kind ad-unavailable when the directory cannot be searched (e.g. the WinRM second hop)
# Searches the configuration naming context for (objectClass=protocolCfgSMTPServer), windows-relay.md 2.4.
$attr = [string]$P['relayiplistattr']
if ($attr -notmatch '^[A-Za-z][A-Za-z0-9-]{0,63}$') {
    RL-Rec 'error' @('message', 'parameter relayiplistattr is not an LDAP attribute name', 'kind', 'bad-parameter')
    RL-End 2
}

# relaylock:include ldap-values
# relaylock:include hop-credential

try {
    $rootDse = RL-DirEntry 'LDAP://RootDSE'
    $cfg = [string]$rootDse.Properties['configurationNamingContext'].Value
    $base = RL-DirEntry ('LDAP://' + $cfg)
    $ds = New-Object DirectoryServices.DirectorySearcher($base, '(objectClass=protocolCfgSMTPServer)')
    $ds.PageSize = 500
    foreach ($n in @('distinguishedName', $attr, 'msExchSmtpRelayForAuth', 'msExchAuthenticationFlags', 'msExchSmtpSmartHost')) {
        [void]$ds.PropertiesToLoad.Add($n)
    }
    $found = @($ds.FindAll())
} catch {
    RL-ErrRec $_ 'ad-unavailable' $null
    RL-End 5
}

foreach ($r in $found) {
    $props = $r.Properties
    $ril = FirstBytes $props[$attr.ToLower()]
    RL-Rec 'advs' @('dn', (First $props['distinguishedname']), 'relayiplist', (RL-Hex $ril),
        'relayforauth', (First $props['msexchsmtprelayforauth']), 'authflags', (First $props['msexchauthenticationflags']),
        'smarthost', (First $props['msexchsmtpsmarthost']))
}
RL-End 0
