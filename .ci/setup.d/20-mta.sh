# shellcheck shell=bash
# Real MTAs for the open-relay integration tests (audit/mtatest,
# audit/integration_test.go). Sourced by .ci/run under set -euo pipefail,
# so this file must not exit, and it must be idempotent.
#
# Debian's postfix, exim4-daemon-* and opensmtpd packages conflict (each
# provides mail-transport-agent), so Postfix is installed normally and
# Exim and OpenSMTPD are unpacked with `apt-get download` + `dpkg -x` under
# /opt/relaylock-mta, with the system users and directories their
# maintainer scripts would create. No system MTA service is left running:
# the tests start private instances on loopback whose outbound mail all
# goes to a sink inside the test.

# relaylock_mta_unpack DIR PKG...: download PKGs, install the shared
# libraries they depend on that are missing, and unpack them into DIR.
relaylock_mta_unpack() {
  local dir="$1" tmp deb dep deps missing=""
  shift
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download "$@")
  deps="$(for deb in "$tmp"/*.deb; do dpkg-deb -f "$deb" Depends; done |
    tr ',' '\n' | sed -E 's/\(.*\)//; s/\|.*//; s/^ +//; s/ +$//' |
    grep -E '^lib' | sort -u || true)"
  for dep in $deps; do
    dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q 'ok installed' ||
      missing="$missing $dep"
  done
  if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$dir"; done
  rm -rf "$tmp"
}

# relaylock_mta_user NAME HOME: a system user with its own group, as the
# packages' postinst scripts create them.
relaylock_mta_user() {
  getent group "$1" >/dev/null || groupadd --system "$1"
  getent passwd "$1" >/dev/null ||
    useradd --system --gid "$1" --home-dir "$2" --no-create-home --shell /usr/sbin/nologin "$1"
}

# relaylock_mta_check BIN: fail here, not in the tests, if a shared
# library is missing.
relaylock_mta_check() {
  if ldd "$1" | grep -q 'not found'; then
    ldd "$1" | grep 'not found' >&2
    return 1
  fi
}

relaylock_mta_setup() {
  local root=/opt/relaylock-mta
  local policy=/usr/sbin/policy-rc.d own_policy=""

  # Postfix: never let the package start the system instance on port 25.
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    own_policy=1
  fi
  if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'ok installed'; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get install -y --no-install-recommends postfix
  fi
  if [ -n "$own_policy" ]; then rm -f "$policy"; fi
  # The package enables its unit; the tests never use the system
  # instance, so it must not start at boot either. Stop it in case an
  # earlier install or a boot started it anyway.
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable postfix.service >/dev/null 2>&1 || true
    if [ -d /run/systemd/system ]; then
      systemctl stop postfix.service >/dev/null 2>&1 || true
    fi
  fi
  if postfix status >/dev/null 2>&1; then postfix stop || true; fi

  # Exim 4 (daemon-light), built to run as Debian-exim (exim4-base's
  # postinst creates that user).
  if [ ! -x "$root/exim4/usr/sbin/exim4" ]; then
    relaylock_mta_unpack "$root/exim4" exim4-base exim4-config exim4-daemon-light
  fi
  relaylock_mta_user Debian-exim /var/spool/exim4
  export RELAYLOCK_EXIM="$root/exim4/usr/sbin/exim4"
  relaylock_mta_check "$RELAYLOCK_EXIM"

  # OpenSMTPD: users opensmtpd and opensmtpq (its postinst), the privsep
  # chroot, and /var/spool/smtpd as the mount point each test instance
  # mounts its own queue on (in a private mount namespace).
  if [ ! -x "$root/opensmtpd/usr/sbin/smtpd" ]; then
    relaylock_mta_unpack "$root/opensmtpd" opensmtpd
  fi
  relaylock_mta_user opensmtpd /var/lib/opensmtpd/empty
  relaylock_mta_user opensmtpq /var/lib/opensmtpd/empty
  mkdir -p /var/lib/opensmtpd/empty /var/spool/smtpd
  export RELAYLOCK_OPENSMTPD="$root/opensmtpd/usr/sbin/smtpd"
  relaylock_mta_check "$RELAYLOCK_OPENSMTPD"

  # -bV exits 1 here: there is no system configuration, on purpose.
  { "$RELAYLOCK_EXIM" -bV 2>/dev/null || true; } | head -1
  postconf -d -h mail_version | sed 's/^/Postfix /'
  echo "OpenSMTPD unpacked at $RELAYLOCK_OPENSMTPD"
}
relaylock_mta_setup
