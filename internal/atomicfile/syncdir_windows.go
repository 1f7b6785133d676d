package atomicfile

// syncDir is a no-op on Windows, where directories cannot be opened for
// sync and MoveFileEx already replaces the target in one step.
func syncDir(string) {}
