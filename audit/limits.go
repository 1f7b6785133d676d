package audit

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Automatic in-flight bound (Options.Concurrency 0).
const (
	// MaxAutoConcurrency caps the automatic bound: enough to keep a
	// 50 ms link busy for thousands of hosts a second, few enough for a
	// home router's NAT table and for a shared machine.
	MaxAutoConcurrency = 512
	// minAutoConcurrency is the least the automatic bound starts with
	// when file descriptors or memory are scarce.
	minAutoConcurrency = 8
	// reservedFDs are kept for DNS (64 queries in flight), the evidence,
	// the journal and the standard streams.
	reservedFDs = 128
	// fdsPerEndpoint: an endpoint uses one connection, and up to
	// Options.PerHost when it spreads a slow batch; budget for some.
	fdsPerEndpoint = 4
	// memPerEndpoint is a generous estimate of one endpoint's memory
	// while it is probed (transcripts, tests, buffers, goroutines).
	memPerEndpoint = 512 << 10
)

// AutoConcurrency is the in-flight bound Run uses when
// Options.Concurrency is 0, and why: the open-file limit (on unix the
// soft limit is first raised to the hard one) and the memory available,
// capped at MaxAutoConcurrency.
func AutoConcurrency() (n int, why string) {
	n = MaxAutoConcurrency
	var notes []string
	if fds, err := raiseFileLimit(); err == nil && fds > 0 {
		notes = append(notes, fmt.Sprintf("open-file limit %d", fds))
		n = min(n, max(minAutoConcurrency, (fds-reservedFDs)/fdsPerEndpoint))
	}
	if mem, err := availableMemory(); err == nil && mem > 0 {
		notes = append(notes, fmt.Sprintf("%d MB available", mem>>20))
		// A quarter of what is available.
		n = min(n, max(minAutoConcurrency, int(mem/4/memPerEndpoint)))
	}
	if n == MaxAutoConcurrency {
		notes = append(notes, fmt.Sprintf("at most %d", MaxAutoConcurrency))
	}
	return n, strings.Join(notes, ", ")
}

// availableMemory reads MemAvailable from /proc/meminfo (Linux); other
// systems report an error and the memory bound is not applied.
func availableMemory() (uint64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "MemAvailable:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no MemAvailable in /proc/meminfo")
}
