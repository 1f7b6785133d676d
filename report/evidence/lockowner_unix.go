//go:build unix

package evidence

import (
	"errors"
	"syscall"
)

// processAlive: signal 0 checks for existence (kill(2)); EPERM means the
// process exists but belongs to someone else.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
