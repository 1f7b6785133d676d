package evidence

// Why the lock-file PID logic is hand-written: the evidence lock is a
// file created with O_EXCL next to the evidence (store.go), because that
// works the same on every OS and on network shares (SMB, NFS) where the
// kernel locks that github.com/gofrs/flock wraps (flock(2), LockFileEx)
// are unreliable or not shared between clients. gofrs/flock is served by
// the module proxy here (v0.7.1 to v0.13.2), but a kernel lock would not
// say who holds it, and the lock file does: this file only writes
// "pid N host H since T" and, for a lock left by a killed process, asks
// the OS whether that pid still runs (kill(2) signal 0, OpenProcess). That
// is a few lines per OS; a dependency for it would not remove the stale
// lock handling, only move it.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// lockContent is what a lock file says about its holder: the process id
// and the host name, so that a lock left by a process that was killed
// (SIGKILL, a crash, a power cut during the save) can be recognised at
// once instead of blocking every later run until StaleLock.
func lockContent() string {
	host, _ := os.Hostname()
	if host == "" || strings.ContainsAny(host, " \t\r\n") {
		host = "?"
	}
	return fmt.Sprintf("pid %d host %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
}

// lockOwnerGone reports whether a lock file's content names a process on
// this host that no longer runs. It answers false whenever it cannot be
// sure: an older lock format without the host, another host (a shared
// file system), a process that exists (even if the id was reused).
func lockOwnerGone(content []byte) bool {
	f := strings.Fields(string(content))
	if len(f) < 4 || f[0] != "pid" || f[2] != "host" {
		return false
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	if host, err := os.Hostname(); err != nil || host != f[3] {
		return false
	}
	return !processAlive(pid)
}

// describeHolder turns a lock file's content into words for a message:
// "relaylock pid 4242 on host mail-audit since 2026-05-06T07:08:09Z". A
// process of this host is called relaylock only if its name says so (or
// is this program's): a lock left by a killed relaylock whose process id
// now belongs to another program must not be blamed on a relaylock.
func describeHolder(content []byte) string {
	f := strings.Fields(string(content))
	switch {
	case len(f) >= 6 && f[0] == "pid" && f[2] == "host" && f[4] == "since":
		if host, _ := os.Hostname(); host == f[3] {
			return describeLocal(f[1], f[3], f[5])
		}
		return fmt.Sprintf("relaylock pid %s on host %s since %s", f[1], f[3], f[5])
	case len(f) >= 2 && f[0] == "pid":
		return "relaylock pid " + f[1] + " (host unknown)"
	}
	return fmt.Sprintf("an unknown process (lock file says %q)", strings.TrimSpace(string(content)))
}

// describeLocal describes the live process pid of this host that a lock
// file names.
func describeLocal(pid, host, since string) string {
	n, err := strconv.Atoi(pid)
	if err != nil {
		return fmt.Sprintf("process %s on this host (%s) since %s, which may not be relaylock", pid, host, since)
	}
	name, ok := processName(n)
	switch {
	case !ok:
		return fmt.Sprintf("process %d on this host (%s) since %s, which may not be relaylock", n, host, since)
	case isRelaylock(name):
		return fmt.Sprintf("relaylock pid %d on this host (%s) since %s", n, host, since)
	}
	return fmt.Sprintf("process %d (%s) on this host (%s), which is not relaylock (the relaylock that took the lock at %s may have ended, and its process id been reused)", n, name, host, since)
}

// isRelaylock says whether a process name (as processName gives it, which
// Linux cuts to 15 bytes) is relaylock's or this program's.
func isRelaylock(name string) bool {
	if strings.Contains(strings.ToLower(name), "relaylock") {
		return true
	}
	self, err := os.Executable()
	if err != nil {
		return false
	}
	base := filepath.Base(self)
	return name == base || (len(name) == 15 && strings.HasPrefix(base, name))
}
