package evidence

import (
	"os"
	"strconv"
	"strings"
)

// processName is the command name of a process of this host
// (/proc/PID/comm, at most 15 bytes), if the OS tells it.
func processName(pid int) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}
