//go:build !linux

package mtatest

import "os/exec"

// Start refuses to run off Linux (Available), so these are never reached
// with a running MTA.

func setProcAttr(cmd *exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, kill bool) { cmd.Process.Kill() }

func killNaming(dir string) {}
