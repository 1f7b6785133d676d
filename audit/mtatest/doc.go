// Package mtatest starts real mail transfer agents (Postfix, Exim and
// OpenSMTPD) for integration tests of the open-relay probe, each
// configured closed or open in one named way (Mode), and a Sink that
// receives everything they relay.
//
// Every instance is private to the test: its configuration, queue and
// logs live in a temporary directory, it listens on its own loopback
// address (127.0.0.x, x ≥ 10) and a free port, and all outbound mail
// goes to one loopback address given by the test (a Sink, or the audit
// catcher); no instance looks anything up in DNS. The trusted network of
// every instance is 127.0.0.254/32, so a prober connecting from 127.0.0.1
// is an outside client, as a real auditor would be; only OpenMynetworks,
// the "trusted network too wide" mistake, widens it to 127.0.0.0/8.
//
// Instances run under a guard shell (proc_linux.go) that stops them when
// the test closes them or dies. OpenSMTPD, whose queue and control socket
// paths are fixed at build time, runs in a private mount namespace.
//
// Starting an MTA needs Linux, root and what .ci/setup.d/20-mta.sh
// installs: Postfix from Debian's package, Exim and OpenSMTPD unpacked
// under /opt/relaylock-mta with their system users. Require skips a test
// when they are missing, unless CI is set, where it fails the test.
//
// A typical test:
//
//	sink := mtatest.StartSink(t)
//	inst := mtatest.StartT(t, mtatest.Config{Kind: mtatest.Postfix,
//		Mode: mtatest.OpenClientAccess, RelayHost: sink.Addr()})
//	// probe inst.Addr; then sink.Wait for what was really relayed
package mtatest
