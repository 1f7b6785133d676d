package evidence

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// processName is the command name of a process of this host, from
// ps(1), if it tells it.
func processName(pid int) (string, bool) {
	out, err := exec.Command("/bin/ps", "-o", "comm=", "-p", strconv.Itoa(pid)).Output()
	name := strings.TrimSpace(string(out))
	if err != nil || name == "" {
		return "", false
	}
	return filepath.Base(name), true
}
