package main

import (
	"os"
	"testing"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/internal/needs"
)

// Test seams that the tests set for the runs that follow; TestMain copies
// them into each run's Env.
var (
	// testResolver replaces DNS.
	testResolver audit.MailResolver
	// beforeEvidenceWrite runs just before a command writes its result to
	// the evidence file.
	beforeEvidenceWrite func(path string)
	// testOnlyCatchStarted is told the catcher's address.
	testOnlyCatchStarted func(addr string)
)

// TestMain removes the relaylock binary the end-to-end tests build (about
// 23 MB, once per run) and prints one line per missing component whose
// tests were skipped.
func TestMain(m *testing.M) {
	testHooks = func(e *env) {
		if testResolver != nil && e.Resolver == nil {
			e.Resolver = testResolver
		}
		if beforeEvidenceWrite != nil && e.BeforeEvidenceWrite == nil {
			e.BeforeEvidenceWrite = beforeEvidenceWrite
		}
		if testOnlyCatchStarted != nil && e.CatchStarted == nil {
			e.CatchStarted = testOnlyCatchStarted
		}
	}
	code := needs.Run(m)
	removeBuiltBinary()
	os.Exit(code)
}
