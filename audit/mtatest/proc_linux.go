//go:build linux

package mtatest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// guardScript runs the MTA ("$@") under a shell that holds the read end
// of a pipe from the test. When the test closes it, or dies without
// cleaning up, read returns and the shell stops the process group (TERM,
// then KILL after 5 s). This cannot rely on Pdeathsig: the kernel clears
// it when a process changes credentials, and both Postfix's master and
// Exim do. When the MTA exits by itself, the group is killed as well, so
// the test sees the exit.
const guardScript = `exec 3<&0
"$@" </dev/null &
child=$!
trap '' TERM
{ read -r _ <&3; kill -TERM 0; sleep 5; kill -KILL 0; } &
wait "$child"
kill -KILL 0
`

// guard wraps cmd in guardScript, in a process group of its own, and
// returns the wrapper; closing its stdin stops the MTA.
func guard(cmd *exec.Cmd) *exec.Cmd {
	g := exec.Command("/bin/sh", append([]string{"-c", guardScript, "mtatest-guard", cmd.Path}, cmd.Args[1:]...)...)
	g.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return g
}

// signalGroup sends SIGKILL to the guard's process group: the last
// resort when closing its stdin did not stop it.
func signalGroup(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// killNaming kills, by process ID, the processes whose command line names
// dir: only processes started for this instance do, since dir is its
// private temporary directory. Exim's delivery processes leave the
// process group (setsid) but name their configuration file.
func killNaming(dir string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	needle := []byte(dir + "/")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(cmdline, needle) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// waitGroupGone waits until no live process is left in the guard's
// process group (killed processes die asynchronously; zombies waiting for
// init to reap them do not count), killing stragglers again after a
// second; it gives up after 10 s.
func waitGroupGone(cmd *exec.Cmd) {
	pgid := cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	kick := time.Now().Add(time.Second)
	for time.Now().Before(deadline) && groupAlive(pgid) {
		if time.Now().After(kick) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			kick = deadline
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// groupAlive reports whether a process that is not a zombie is in
// process group pgid (proc(5): /proc/PID/stat fields 3 state, 5 pgrp).
func groupAlive(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 3 || string(f[0]) == "Z" || string(f[0]) == "X" {
			continue
		}
		if g, err := strconv.Atoi(string(f[2])); err == nil && g == pgid {
			return true
		}
	}
	return false
}
