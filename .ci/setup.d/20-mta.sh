# shellcheck shell=bash
# Real MTAs for the open-relay integration tests (audit/mtatest,
# audit/integration_test.go). Sourced by .ci/run under set -euo pipefail,
# so this file must not exit, and it must be idempotent.
#
# Debian's postfix, exim4-daemon-* and opensmtpd packages conflict (each
# provides mail-transport-agent), so Postfix is installed normally and Exim
# is unpacked with `apt-get download` + `dpkg -x` into /opt/relaylock-mta/exim4,
# with the system user its maintainer scripts would create. No system MTA
# service is left running: the tests start private instances on loopback
# whose outbound mail all goes to a sink inside the test.

relaylock_mta_setup() {
  local root=/opt/relaylock-mta
  local policy=/usr/sbin/policy-rc.d own_policy=""

  # Never let the package start the system Postfix on port 25.
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    own_policy=1
  fi
  if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'ok installed'; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get install -y --no-install-recommends postfix
  fi
  [ -n "$own_policy" ] && rm -f "$policy"

  # The package enables its unit; the tests never use the system
  # instance, so it must not start at boot either. Stop it in case an
  # earlier install or a boot started it anyway.
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable postfix.service >/dev/null 2>&1 || true
    if [ -d /run/systemd/system ]; then
      systemctl stop postfix.service >/dev/null 2>&1 || true
    fi
  fi
  postfix status >/dev/null 2>&1 && postfix stop || true

  # Exim 4 (daemon-light) unpacked beside the system, never installed.
  local exim_root="$root/exim4"
  if [ ! -x "$exim_root/usr/sbin/exim4" ]; then
    local tmp
    tmp="$(mktemp -d)"
    (cd "$tmp" && apt-get download exim4-base exim4-config exim4-daemon-light)
    # The shared libraries exim links against (Depends: of the packages,
    # minus exim's own and the conflicting MTA virtual packages).
    local deps
    deps="$(dpkg-deb -f "$tmp"/exim4-daemon-light_*.deb Depends |
      tr ',' '\n' | sed -E 's/\(.*\)//; s/\|.*//; s/^ +//; s/ +$//' |
      grep -E '^lib' || true)"
    local dep missing=""
    for dep in $deps; do
      dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q 'ok installed' ||
        missing="$missing $dep"
    done
    if [ -n "$missing" ]; then
      # shellcheck disable=SC2086
      apt-get install -y --no-install-recommends $missing
    fi
    rm -rf "$exim_root"
    mkdir -p "$exim_root"
    local deb
    for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$exim_root"; done
    rm -rf "$tmp"
  fi
  # exim4-base's postinst: the system user the binary was built to run as.
  if ! getent group Debian-exim >/dev/null; then
    groupadd --system Debian-exim
  fi
  if ! getent passwd Debian-exim >/dev/null; then
    useradd --system --gid Debian-exim --home-dir /var/spool/exim4 \
      --no-create-home --shell /usr/sbin/nologin Debian-exim
  fi
  export RELAYLOCK_EXIM="$exim_root/usr/sbin/exim4"
  # Fail here, not in the tests, if a shared library is missing.
  if ldd "$RELAYLOCK_EXIM" | grep -q 'not found'; then
    ldd "$RELAYLOCK_EXIM" | grep 'not found' >&2
    return 1
  fi
  # -bV exits 1 here: there is no system configuration, on purpose.
  { "$RELAYLOCK_EXIM" -bV 2>/dev/null || true; } | head -1
  postconf -d -h mail_version | sed 's/^/Postfix /'
}
relaylock_mta_setup
