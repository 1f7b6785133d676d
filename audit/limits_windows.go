//go:build windows

package audit

import (
	"errors"
	"syscall"
)

// raiseFileLimit: Windows has no RLIMIT_NOFILE, so no
// per-process descriptor limit to raise; the bound comes from memory and
// MaxAutoConcurrency.
func raiseFileLimit() (int, error) {
	return 0, errors.New("no RLIMIT_NOFILE on this system")
}

// Winsock errors for a connect that failed on this machine
// (https://learn.microsoft.com/windows/win32/winsock/windows-sockets-error-codes-2).
const (
	wsaEMFILE        = syscall.Errno(10024)
	wsaEADDRNOTAVAIL = syscall.Errno(10049)
	wsaENOBUFS       = syscall.Errno(10055)
)

// isLocalDialError reports a connect that failed on this machine, not at
// the server: out of sockets, source ports or buffers.
func isLocalDialError(err error) bool {
	for _, e := range []syscall.Errno{wsaEMFILE, wsaEADDRNOTAVAIL, wsaENOBUFS} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
