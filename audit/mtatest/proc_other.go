//go:build !linux

package mtatest

import "os/exec"

// Start refuses to run off Linux (Available), so these are never reached
// with a running MTA.

func guard(cmd *exec.Cmd) *exec.Cmd { return cmd }

func signalGroup(cmd *exec.Cmd) { cmd.Process.Kill() }

func killNaming(dir string) {}

func waitGroupGone(cmd *exec.Cmd) {}
