// Package mtatest starts real mail transfer agents (Postfix, Exim) for
// integration tests of the open-relay probe, each configured closed or
// open in one named way, and a Sink that receives everything they relay.
//
// Every instance is private to the test: its configuration, queue and
// logs live in a temporary directory, it listens on its own loopback
// address (127.0.0.x, x ≥ 10) and a free port, and all outbound mail
// goes to one loopback address given by the test (a Sink, or the audit
// catcher). The trusted network of every instance is 127.0.0.254/32, so
// a prober connecting from 127.0.0.1 is an outside client, as a real
// auditor would be; only the modes that name a mynetworks or
// relay_from_hosts mistake widen it.
//
// Starting an MTA needs root and the binaries that .ci/setup.d/20-mta.sh
// installs (Postfix from Debian's package, Exim unpacked under
// /opt/relaylock-mta/exim4). Require skips a test when they are missing,
// unless CI is set, where a missing MTA fails the test instead.
package mtatest
