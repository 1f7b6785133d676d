//go:build !windows

package atomicfile

import "os"

// syncDir makes the rename durable. Errors are ignored: some file systems
// refuse fsync on directories, and the data itself is already synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
