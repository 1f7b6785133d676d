package main

import "github.com/relaylock/relaylock/internal/engagement"

// The exit codes under the short names the tests use.
const (
	exitOK           = engagement.ExitOK
	exitError        = engagement.ExitError
	exitUsage        = engagement.ExitUsage
	exitOpen         = engagement.ExitOpen
	exitStillOpen    = engagement.ExitStillOpen
	exitInconclusive = engagement.ExitInconclusive
	exitEvidence     = engagement.ExitEvidence
	exitCancelled    = engagement.ExitCancelled
)
