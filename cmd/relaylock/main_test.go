package main

import (
	"os"
	"testing"

	"github.com/relaylock/relaylock/internal/needs"
)

// TestMain removes the relaylock binary the end-to-end tests build (about
// 23 MB, once per run) and prints one line per missing component whose
// tests were skipped.
func TestMain(m *testing.M) {
	code := needs.Run(m)
	removeBuiltBinary()
	os.Exit(code)
}
