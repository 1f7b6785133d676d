# ex2003-read-ad: read the Exchange 2000/2003 SMTP virtual servers from Active Directory.
# Product: Exchange2003. Mode: read.
# Idempotency: read-only, changes nothing; safe to run any number of times.
# Parameters (data only; plus the second-hop credential of lib/hop-credential.ps1, used for every LDAP bind):
#   relayiplistattr  LDAP name of the relay-list attribute (remediate.Ex2003RelayIpListAttr; the name is UNVERIFIED)
#   dc               domain controller to read from (relaylock --dc); empty: the DSAccess configuration
#                    domain controller (Exchange_DSAccessDC Type 0), which DS2MB reads, else the DC the
#                    locator gives (RootDSE dnsHostName). Every bind after RootDSE goes to that DC.
# Records (decoded by remediate/exchange2003.go):
#   dc     name source ds2mb   (the DC used; source operator|dsaccess|locator; ds2mb: DSAccess's configuration DC)
#   schema dn                  (the attributeSchema object whose lDAPDisplayName is relayiplistattr)
#   advs   dn relayiplist relayforauth authflags smarthost   (one per protocolCfgSMTPServer object)
#   error  kind ad-unavailable when the directory cannot be searched (e.g. the WinRM second hop),
#          kind schema-missing (exit 6) when the schema has no such attribute: reading it would
#          silently return nothing, which looks like an unset (closed) relay list.
# Searches the configuration naming context for (objectClass=protocolCfgSMTPServer), docs/windows-relay.md 2.4.
$attr = [string]$P['relayiplistattr']
$dc = [string]$P['dc']
if ($attr -notmatch '^[A-Za-z][A-Za-z0-9-]{0,63}$') {
    RL-Rec 'error' @('message', 'parameter relayiplistattr is not an LDAP attribute name', 'kind', 'bad-parameter')
    RL-End 2
}
if ($dc -notmatch '^([A-Za-z0-9][A-Za-z0-9.-]{0,254})?$') {
    RL-Rec 'error' @('message', 'parameter dc is not a host name', 'kind', 'bad-parameter')
    RL-End 2
}

# relaylock:include ldap-values
# relaylock:include hop-credential

# DS2MB registers with the DSAccess configuration domain controller and is
# notified of changes there (Metabase Update Service, Exchange 2003 docs).
$ds2mb = ''
try {
    foreach ($x in @(Get-WmiObject -Namespace 'root\MicrosoftExchangeV2' -Class Exchange_DSAccessDC)) {
        if ($ds2mb -eq '' -and [int]$x.Type -eq 0 -and $x.IsUp) { $ds2mb = [string]$x.Name }
    }
} catch {
    $ds2mb = ''
}
$src = 'operator'
if ($dc -eq '' -and $ds2mb -ne '') {
    $dc = $ds2mb
    $src = 'dsaccess'
}

$schemaDn = ''
try {
    $rootDse = RL-DirEntry 'LDAP://RootDSE'
    if ($dc -eq '') {
        $dc = [string]$rootDse.Properties['dnsHostName'].Value
        $src = 'locator'
    }
    $cfg = $dc + '/' + [string]$rootDse.Properties['configurationNamingContext'].Value
    $schemaPath = 'LDAP://' + $dc + '/' + [string]$rootDse.Properties['schemaNamingContext'].Value
    $schema = RL-DirEntry $schemaPath
    $ss = New-Object DirectoryServices.DirectorySearcher($schema, ('(&(objectClass=attributeSchema)(lDAPDisplayName=' + $attr + '))'))
    [void]$ss.PropertiesToLoad.Add('distinguishedName')
    $hit = $ss.FindOne()
    if ($null -ne $hit) { $schemaDn = [string](First $hit.Properties['distinguishedname']) }
    $base = RL-DirEntry ('LDAP://' + $cfg)
    $ds = New-Object DirectoryServices.DirectorySearcher($base, '(objectClass=protocolCfgSMTPServer)')
    $ds.PageSize = 500
    foreach ($n in @('distinguishedName', $attr, 'msExchSmtpRelayForAuth', 'msExchAuthenticationFlags', 'msExchSmtpSmartHost')) {
        [void]$ds.PropertiesToLoad.Add($n)
    }
    if ($schemaDn -ne '') { $found = @($ds.FindAll()) }
} catch {
    RL-ErrRec $_ 'ad-unavailable' $null
    RL-End 5
}

$ds2mbOut = $null
if ($ds2mb -ne '') { $ds2mbOut = $ds2mb }
RL-Rec 'dc' @('name', $dc, 'source', $src, 'ds2mb', $ds2mbOut)
if ($schemaDn -eq '') {
    RL-Rec 'error' @('message', ('no attributeSchema with lDAPDisplayName ' + $attr + ' in the schema on ' + $dc), 'kind', 'schema-missing', 'attribute', $attr)
    RL-End 6
}
RL-Rec 'schema' @('dn', $schemaDn)

foreach ($r in $found) {
    $props = $r.Properties
    $ril = FirstBytes $props[$attr.ToLower()]
    RL-Rec 'advs' @('dn', (First $props['distinguishedname']), 'relayiplist', (RL-Hex $ril),
        'relayforauth', (First $props['msexchsmtprelayforauth']), 'authflags', (First $props['msexchauthenticationflags']),
        'smarthost', (First $props['msexchsmtpsmarthost']))
}
RL-End 0
