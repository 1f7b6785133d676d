package smtptest

import (
	"net"
	"sync"
	"time"
)

// latencyConn delays everything the server writes by a fixed time, as a
// slow link would: bytes written together arrive together, d later, and
// writes keep their order. Reads are not delayed, so a client's round
// trip costs d: a client that waits for each reply waits d per reply,
// while a pipelined group answered in one flush costs d once.
type latencyConn struct {
	net.Conn
	d time.Duration

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []chunk
	closed bool
	err    error
	done   chan struct{}
}

type chunk struct {
	due  time.Time
	data []byte
}

func newLatencyConn(c net.Conn, d time.Duration) *latencyConn {
	lc := &latencyConn{Conn: c, d: d, done: make(chan struct{})}
	lc.cond = sync.NewCond(&lc.mu)
	go lc.deliver()
	return lc
}

// Write queues a copy of b for delivery d from now. It fails only when
// an earlier delivery failed.
func (lc *latencyConn) Write(b []byte) (int, error) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.err != nil {
		return 0, lc.err
	}
	if lc.closed {
		return 0, net.ErrClosed
	}
	lc.queue = append(lc.queue, chunk{due: time.Now().Add(lc.d), data: append([]byte(nil), b...)})
	lc.cond.Signal()
	return len(b), nil
}

func (lc *latencyConn) deliver() {
	defer close(lc.done)
	for {
		lc.mu.Lock()
		for len(lc.queue) == 0 && !lc.closed {
			lc.cond.Wait()
		}
		if len(lc.queue) == 0 {
			lc.mu.Unlock()
			return
		}
		ch := lc.queue[0]
		lc.queue = lc.queue[1:]
		lc.mu.Unlock()
		time.Sleep(time.Until(ch.due))
		if _, err := lc.Conn.Write(ch.data); err != nil {
			lc.mu.Lock()
			lc.err, lc.queue = err, nil
			lc.mu.Unlock()
		}
	}
}

// Close delivers what is queued (the 221 to QUIT, say), then closes.
func (lc *latencyConn) Close() error {
	lc.mu.Lock()
	lc.closed = true
	lc.cond.Signal()
	lc.mu.Unlock()
	select {
	case <-lc.done:
	case <-time.After(lc.d + IdleTimeout):
	}
	return lc.Conn.Close()
}
