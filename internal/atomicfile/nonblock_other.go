//go:build !unix

package atomicfile

// openNonblock: Windows has no FIFO in the file system to block on.
const openNonblock = 0
