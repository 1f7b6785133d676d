# shellcheck shell=bash
# Debian's MIT Kerberos, for the Kerberos tests (internal/krbtest starts a
# throwaway KDC on loopback in a temp dir; nothing here configures or
# starts the system KDC): krb5-kdc (krb5kdc, kdb5_util), krb5-admin-server
# (kadmin.local, to add principals and export keytabs) and krb5-user
# (kinit, klist). python3-requests-kerberos (MIT GSSAPI through
# python3-kerberos) lets python3-winrm authenticate with Kerberos, the
# independent second client of internal/lab/pywinrm_kerberos_test.go.
# Idempotent; must not exit.
krb5_pkgs=""
for p in krb5-kdc krb5-admin-server krb5-user python3-requests-kerberos; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || krb5_pkgs="$krb5_pkgs $p"
done
if [ -n "$krb5_pkgs" ]; then
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $krb5_pkgs
fi
unset krb5_pkgs p
# Where the tests find the KDC binaries (krbtest also looks in /usr/sbin).
export RELAYLOCK_KRB5_SBIN=/usr/sbin
