package mtatest

import (
	"testing"

	"github.com/relaylock/relaylock/internal/needs"
)

// TestMain prints, at the end, one line per missing component whose tests
// were skipped (see internal/needs).
func TestMain(m *testing.M) { needs.Main(m) }
