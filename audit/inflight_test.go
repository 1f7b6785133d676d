package audit

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit/smtptest"
)

// The in-flight bound follows AIMD: a local connect error halves it once
// per burst, a window of mostly timed-out connects halves it (not below
// the timeout floor), and rounds of successful connects bring it back.
func TestInflightAIMD(t *testing.T) {
	clock := time.Unix(0, 0)
	var changes []Concurrency
	g := newInflight(512, func(c Concurrency) { changes = append(changes, c) })
	g.now = func() time.Time { return clock }
	ctx := context.Background()
	for range 512 {
		if err := g.acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	emfile := &netErr{syscall.EMFILE}
	for range 100 { // one burst: every dial in flight fails at once
		g.localError(emfile)
	}
	if st := g.state(); st.Limit != 256 || !strings.Contains(st.Reason, "too many open files") {
		t.Fatalf("after an EMFILE burst: %+v, want limit 256", st)
	}
	clock = clock.Add(time.Second)
	g.localError(emfile)
	if st := g.state(); st.Limit != 128 {
		t.Fatalf("after a second burst: %+v, want 128", st)
	}
	// Mostly timeouts: halve per window, never below the floor.
	for w := 0; w < 10; w++ {
		clock = clock.Add(time.Second)
		for i := range timeoutWindow {
			if i%4 == 0 {
				g.mu.Lock()
				g.conns++ // a success that does not count towards recovery
				g.windowLocked()
				g.mu.Unlock()
			} else {
				g.timedOut()
			}
		}
	}
	if st := g.state(); st.Limit != timeoutFloor || !strings.Contains(st.Reason, "timed out") {
		t.Fatalf("after timeout windows: %+v, want the floor %d", st, timeoutFloor)
	}
	// A minority of timeouts is the targets, not the path: no change.
	before := g.state().Limit
	clock = clock.Add(time.Second)
	for i := range timeoutWindow {
		if i%3 == 0 {
			g.timedOut()
		} else {
			g.mu.Lock()
			g.conns++
			g.windowLocked()
			g.mu.Unlock()
		}
	}
	if g.state().Limit != before {
		t.Fatalf("a third of connects timing out changed the bound to %d", g.state().Limit)
	}
	// Recovery: successful rounds add an eighth of the maximum each.
	for g.state().Limit < 512 {
		for range g.state().Limit {
			g.connected()
		}
	}
	if st := g.state(); st.Reason != "" {
		t.Fatalf("recovered: %+v", st)
	}
	if len(changes) < 6 {
		t.Fatalf("%d changes reported", len(changes))
	}
}

// acquire waits while the bound is reached, and a lowered bound admits
// nobody until enough have left.
func TestInflightAcquireWaits(t *testing.T) {
	g := newInflight(2, nil)
	ctx := context.Background()
	g.acquire(ctx)
	g.acquire(ctx)
	got := make(chan error, 1)
	go func() { got <- g.acquire(ctx) }()
	select {
	case err := <-got:
		t.Fatalf("a third acquire passed a bound of 2: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	g.release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := g.acquire(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v", err)
	}
	if st := g.state(); st.Active != 2 {
		t.Fatalf("active %d after a cancelled acquire, want 2", st.Active)
	}
}

// A local resource error is classified by its errno, wrapped as the net
// package wraps it.
func TestIsLocalDialError(t *testing.T) {
	if !isLocalDialError(&netErr{syscall.EADDRNOTAVAIL}) && !isLocalDialError(&netErr{syscall.Errno(10049)}) {
		t.Error("EADDRNOTAVAIL is not a local error")
	}
	if isLocalDialError(&netErr{syscall.ECONNREFUSED}) || isLocalDialError(context.DeadlineExceeded) {
		t.Error("a refusal or timeout is a local error")
	}
}

type netErr struct{ err error }

func (e *netErr) Error() string { return "dial tcp: " + e.err.Error() }
func (e *netErr) Unwrap() error { return e.err }

// AutoConcurrency stays within its bounds and says why.
func TestAutoConcurrency(t *testing.T) {
	n, why := AutoConcurrency()
	if n < minAutoConcurrency || n > MaxAutoConcurrency || why == "" {
		t.Fatalf("AutoConcurrency() = %d, %q", n, why)
	}
}

// Connects that fail on this machine are retried, not reported as an
// unreachable server, and lower the in-flight bound on the way.
func TestRunLocalDialErrorsBackOff(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Closed554())
	var mu sync.Mutex
	failed := 0
	var d net.Dialer
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		fail := failed < 4
		failed++
		mu.Unlock()
		if fail {
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.EMFILE)}
		}
		return d.DialContext(ctx, network, addr)
	}
	var targets []string
	for range 12 {
		targets = append(targets, srv.Addr())
	}
	var changes []Concurrency
	res, err := Run(context.Background(), Options{Targets: targets, MailDomain: "example.com", HeloName: "probe.example.net",
		Concurrency: 8, PerHost: 16, Dialer: dial, OnConcurrency: func(c Concurrency) { changes = append(changes, c) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range res.Targets {
		if tr.Verdict != VerdictClosed {
			t.Fatalf("%s: %s %s", tr.Target, tr.Verdict, tr.Reason)
		}
	}
	backedOff := false
	for _, c := range changes {
		if c.Limit < c.Max && strings.Contains(c.Reason, "too many open files") {
			backedOff = true
		}
	}
	if !backedOff {
		t.Fatalf("no back-off reported: %+v", changes)
	}
}
