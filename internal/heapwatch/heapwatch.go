// Package heapwatch samples the Go heap while a test runs, so a test can
// bound the memory a hostile peer makes the code under test use.
package heapwatch

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Watch samples HeapAlloc until Stop.
type Watch struct {
	before uint64
	peak   atomic.Uint64
	stop   chan struct{}
	done   chan struct{}
}

// Start collects garbage, notes the heap, and samples it every interval.
func Start(every time.Duration) *Watch {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	w := &Watch{before: m.HeapAlloc, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > w.peak.Load() {
				w.peak.Store(m.HeapAlloc)
			}
			select {
			case <-w.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	return w
}

// Stop ends the sampling and returns the heap at Start and how far the
// sampled peak rose above it.
func (w *Watch) Stop() (before, growth uint64) {
	close(w.stop)
	<-w.done
	peak := w.peak.Load()
	return w.before, peak - min(peak, w.before)
}
