//go:build unix

package atomicfile

import "syscall"

// openNonblock: open(2) of a FIFO returns at once instead of waiting for
// a writer; it changes nothing for a regular file.
const openNonblock = syscall.O_NONBLOCK
