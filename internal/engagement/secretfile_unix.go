//go:build !windows

package engagement

import (
	"fmt"
	"io/fs"
)

// checkSecretFileMode refuses a password file that other users can read
// and warns about one the group can read.
func checkSecretFileMode(name string, fi fs.FileInfo) (warning string, err error) {
	perm := fi.Mode().Perm()
	switch {
	case perm&0o004 != 0:
		return "", Usagef("password file %s is readable by every user (mode %04o): run 'chmod 600 %s'", name, perm, name)
	case perm&0o040 != 0:
		return fmt.Sprintf("password file %s is readable by its group (mode %04o); 'chmod 600 %s' keeps it private", name, perm, name), nil
	}
	return "", nil
}
