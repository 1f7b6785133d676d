//go:build !unix && !windows

package audit

import "errors"

// raiseFileLimit: no RLIMIT_NOFILE here; the bound comes from memory
// and MaxAutoConcurrency.
func raiseFileLimit() (int, error) {
	return 0, errors.New("no RLIMIT_NOFILE on this system")
}

// isLocalDialError: connect errors are not classified on this system.
func isLocalDialError(error) bool { return false }
