package audit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Adaptive in-flight bound (Options.Concurrency): how many endpoints are
// probed at once. It starts at its maximum and follows AIMD, as TCP's
// congestion control does (RFC 5681 §3.1): a local resource error on
// connect (EMFILE, ENFILE, EADDRNOTAVAIL, ENOBUFS) halves it at once; so
// does a window of connects of which at least half timed out (a NAT or a
// firewall on the way dropping a burst of SYNs). Every round of
// successful connects as large as the bound raises it by an eighth of the
// maximum, back up to the maximum.
//
// Timeouts alone never take it below timeoutFloor (the fixed default of
// earlier versions): a target list of firewalled hosts times out at any
// rate, and must not crawl for it.
const (
	timeoutWindow = 64
	timeoutFloor  = 32
	// decreaseCooldown keeps one burst of failures (every dial in flight
	// failing at once) from halving the bound once per dial.
	decreaseCooldown = 250 * time.Millisecond
)

// Concurrency is the state of the adaptive in-flight bound, reported to
// Options.OnConcurrency whenever Limit changes.
type Concurrency struct {
	Limit  int // endpoints allowed at once now
	Max    int // Options.Concurrency (or the automatic default)
	Active int // endpoints being probed
	// Reason says why Limit last changed: "" at the start, else e.g.
	// "backing off: 40 of the last 64 connects timed out".
	Reason string
}

// inflight is the gate every endpoint passes before it is probed.
type inflight struct {
	mu       sync.Mutex
	limit    int
	max      int
	active   int
	wake     chan struct{} // closed when a slot may have become free
	conns    int           // connects in the current timeout window
	timeouts int
	okRound  int // successful connects since the last change
	lastDrop time.Time
	reason   string
	now      func() time.Time
	onChange func(Concurrency)
}

func newInflight(max int, onChange func(Concurrency)) *inflight {
	return &inflight{limit: max, max: max, wake: make(chan struct{}), now: time.Now, onChange: onChange}
}

// acquire waits for a slot.
func (g *inflight) acquire(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		g.mu.Lock()
		if g.active < g.limit {
			g.active++
			g.mu.Unlock()
			return nil
		}
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// reacquire takes a slot back after a wait that released it: within the
// limit like acquire, or, once ctx is done, over it, so that the release
// that follows stays balanced.
func (g *inflight) reacquire(ctx context.Context) {
	if g.acquire(ctx) != nil {
		g.mu.Lock()
		g.active++
		g.mu.Unlock()
	}
}

func (g *inflight) release() {
	g.mu.Lock()
	g.active--
	g.signalLocked()
	g.mu.Unlock()
}

func (g *inflight) signalLocked() {
	close(g.wake)
	g.wake = make(chan struct{})
}

// State is a snapshot.
func (g *inflight) state() Concurrency {
	g.mu.Lock()
	defer g.mu.Unlock()
	return Concurrency{Limit: g.limit, Max: g.max, Active: g.active, Reason: g.reason}
}

// connected notes a successful connect (additive increase).
func (g *inflight) connected() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.conns++
	g.okRound++
	g.windowLocked()
	if g.limit < g.max && g.okRound >= g.limit {
		g.okRound = 0
		g.limit = min(g.max, g.limit+max(1, g.max/8))
		g.reason = "recovering"
		if g.limit == g.max {
			g.reason = ""
		}
		g.changedLocked()
	}
	g.mu.Unlock()
}

// timedOut notes a connect timeout.
func (g *inflight) timedOut() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.conns++
	g.timeouts++
	g.windowLocked()
	g.mu.Unlock()
}

// windowLocked closes a window of timeoutWindow connects: if at least
// half timed out, halve the bound (not below timeoutFloor).
func (g *inflight) windowLocked() {
	if g.conns < timeoutWindow {
		return
	}
	conns, timeouts := g.conns, g.timeouts
	g.conns, g.timeouts = 0, 0
	if 2*timeouts < conns {
		return
	}
	floor := min(timeoutFloor, g.max)
	if g.limit <= floor {
		return
	}
	g.decreaseLocked(floor, fmt.Sprintf("backing off: %d of the last %d connects timed out", timeouts, conns))
}

// localError notes a connect that failed on this machine (file
// descriptors or source ports exhausted): halve the bound, down to 1.
func (g *inflight) localError(err error) {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.decreaseLocked(1, fmt.Sprintf("backing off: %v", err))
	g.mu.Unlock()
}

func (g *inflight) decreaseLocked(floor int, reason string) {
	now := g.now()
	if !g.lastDrop.IsZero() && now.Sub(g.lastDrop) < decreaseCooldown {
		return
	}
	n := max(floor, min(g.limit, max(g.active, 1))/2)
	if n >= g.limit {
		return
	}
	g.lastDrop = now
	g.limit, g.okRound, g.reason = n, 0, reason
	g.changedLocked()
}

func (g *inflight) changedLocked() {
	g.signalLocked()
	if g.onChange != nil {
		st := Concurrency{Limit: g.limit, Max: g.max, Active: g.active, Reason: g.reason}
		// Called with g.mu held: callbacks must not call back into the
		// gate. They are short (a progress line).
		g.onChange(st)
	}
}
