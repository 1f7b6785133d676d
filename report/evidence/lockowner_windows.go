//go:build windows

package evidence

import (
	"errors"

	"golang.org/x/sys/windows"
)

// processAlive opens the process for a query; a process that has ended
// either cannot be opened (ERROR_INVALID_PARAMETER) or has an exit code
// other than STILL_ACTIVE.
func processAlive(pid int) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return !errors.Is(err, windows.ERROR_INVALID_PARAMETER)
	}
	defer windows.CloseHandle(h)
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil {
		return true
	}
	const stillActive = 259
	return code == stillActive
}
