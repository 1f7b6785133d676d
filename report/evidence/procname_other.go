//go:build !linux && !darwin

package evidence

// processName: not asked of this OS; the holder is described as a
// process that may not be relaylock.
func processName(int) (string, bool) { return "", false }
