# shellcheck shell=bash
# Debian's postgrey, a real greylisting Postfix policy server, for the
# greylisting integration tests (audit/greylist_integration_test.go,
# mtatest.StartPostgrey). The tests start their own instance on loopback;
# the package's service is not needed. Idempotent; must not exit.
if ! command -v postgrey >/dev/null 2>&1 && [ ! -x /usr/sbin/postgrey ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgrey
fi
