//go:build unix

package audit

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit where
// the system allows it, and returns the soft limit then in force. (The Go
// runtime does the same at start-up on most systems; doing it here keeps
// the bound right where it does not, and reads the value.)
func raiseFileLimit() (int, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		want := rl
		want.Cur = rl.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err == nil {
			rl = want
		} else if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			// macOS refuses more than kern.maxfilesperproc: keep the old one.
			return 0, err
		}
	}
	if rl.Cur > 1<<30 {
		return 1 << 30, nil
	}
	return int(rl.Cur), nil
}

// isLocalDialError reports a connect that failed on this machine, not at
// the server: out of file descriptors (EMFILE, ENFILE), of source ports
// (EADDRNOTAVAIL) or of buffers (ENOBUFS, EAGAIN).
func isLocalDialError(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.EADDRNOTAVAIL, syscall.ENOBUFS, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
