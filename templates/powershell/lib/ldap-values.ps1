# BEGIN ldap-values (templates/powershell/lib/ldap-values.ps1, included by the ex2003 scripts)
# First and FirstBytes take the first value of an LDAP property collection.
function First($c) {
    if ($null -eq $c -or $c.Count -eq 0) { return $null }
    return $c[0]
}

# FirstBytes keeps a byte[] whole (a plain return would unroll it, and a
# zero-length value would turn into $null).
function FirstBytes($c) {
    if ($null -eq $c -or $c.Count -eq 0) { return $null }
    return ,([byte[]]$c[0])
}
# END ldap-values
