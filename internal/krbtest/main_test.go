package krbtest

import (
	"testing"

	"github.com/relaylock/relaylock/internal/needs"
)

func TestMain(m *testing.M) { needs.Main(m) }
