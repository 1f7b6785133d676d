//go:build linux

package mtatest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
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
