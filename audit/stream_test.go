package audit

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit/smtptest"
)

// Two domains with the same MX address share its PerHost connection
// slots: the limit is per address over the whole run, not per target.
func TestRunPerHostAcrossTargets(t *testing.T) {
	p := smtptest.Closed554()
	p.Delay = 2 * time.Millisecond
	p.LocalDomains = []string{"a.example", "b.example", "c.example"}
	srv := smtptest.Start(t, p)
	_, port, _ := net.SplitHostPort(srv.Addr())
	pn, _ := strconv.Atoi(port)
	lo := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	opts := Options{
		Targets: []string{"a.example", "b.example", "c.example"},
		Resolver: &MockResolver{
			MX:    map[string][]string{"a.example": {"mx.a.example"}, "b.example": {"mx.b.example"}, "c.example": {"mx.a.example"}},
			Addrs: map[string][]netip.Addr{"mx.a.example": lo, "mx.b.example": lo},
		},
		Ports: []int{pn}, HeloName: "probe.example.net", PerHost: 2, Concurrency: 8,
		CommandTimeout: 5 * time.Second,
	}
	// Counted where the limit holds, at the client: a server notices a
	// closed connection a moment later, so its own count can overlap.
	var open, most atomic.Int32
	var d net.Dialer
	opts.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		n := open.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		return &countedConn{Conn: c, open: &open}, nil
	}
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range res.Targets {
		if tr.Verdict != VerdictClosed {
			t.Fatalf("%s: %s %s", tr.Target, tr.Verdict, tr.Reason)
		}
	}
	if m := most.Load(); m > 2 {
		t.Fatalf("%d connections at once to one address; --per-host 2", m)
	}
	if n := len(srv.Sessions()); n < 3 {
		t.Fatalf("%d sessions for 3 targets", n)
	}
}

type countedConn struct {
	net.Conn
	open   *atomic.Int32
	closed sync.Once
}

func (c *countedConn) Close() error {
	c.closed.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// Every target is reported once, when its last endpoint is done, with
// full detail; SummaryOnly then drops the detail from the Result.
func TestRunOnTargetSummaryOnly(t *testing.T) {
	open, closed := smtptest.Start(t, smtptest.Open()), smtptest.Start(t, smtptest.Closed554())
	var targets []string
	for i := 0; i < 4; i++ {
		targets = append(targets, open.Addr(), closed.Addr())
	}
	var mu sync.Mutex
	got := map[int]TargetResult{}
	res, err := Run(context.Background(), Options{Targets: targets, MailDomain: "example.com", HeloName: "probe.example.net",
		SummaryOnly: true, PerHost: 8,
		OnTarget: func(i int, tr TargetResult) {
			mu.Lock()
			defer mu.Unlock()
			if _, dup := got[i]; dup {
				t.Errorf("target %d reported twice", i)
			}
			got[i] = tr
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(targets) {
		t.Fatalf("%d OnTarget calls for %d targets", len(got), len(targets))
	}
	for i, tr := range got {
		want := VerdictClosed
		if i%2 == 0 {
			want = VerdictOpen
		}
		if tr.Verdict != want || res.Targets[i].Verdict != want {
			t.Errorf("target %d: streamed %s, result %s; want %s", i, tr.Verdict, res.Targets[i].Verdict, want)
		}
		if len(tr.Endpoints) != 1 || len(tr.Endpoints[0].Tests) == 0 || len(tr.Endpoints[0].Transcripts) == 0 {
			t.Fatalf("target %d streamed without detail: %+v", i, tr.Endpoints)
		}
		ep := res.Targets[i].Endpoints[0]
		if len(ep.Tests) != len(ep.Triggers) || len(ep.Transcripts) != 0 || ep.RoundTrips == 0 || ep.Verdict != want {
			t.Errorf("target %d kept %d tests (%d triggers), %d transcripts (%d round trips) in summary mode", i, len(ep.Tests), len(ep.Triggers), len(ep.Transcripts), ep.RoundTrips)
		}
		for _, ts := range ep.Tests {
			if !slices.Contains(ep.Triggers, ts.ID) {
				t.Errorf("target %d kept the non-triggering test %s in summary mode", i, ts.ID)
			}
		}
	}
	if res.Verdict != VerdictOpen {
		t.Errorf("run verdict %s", res.Verdict)
	}
}

// A cancelled run reports only the targets that finished before the
// cancellation.
func TestRunOnTargetCancelled(t *testing.T) {
	p := smtptest.Closed554()
	p.Delay = 20 * time.Millisecond
	slow := smtptest.Start(t, p)
	fast := smtptest.Start(t, smtptest.Closed554())
	ctx, cancel := context.WithCancel(context.Background())
	var reported []int
	res, err := Run(ctx, Options{Targets: []string{fast.Addr(), slow.Addr()}, MailDomain: "example.com", HeloName: "probe.example.net",
		OnTarget: func(i int, tr TargetResult) {
			reported = append(reported, i)
			cancel()
		}})
	if err == nil || res == nil {
		t.Fatalf("err %v, res %v: want the cancellation and a partial result", err, res != nil)
	}
	if len(reported) != 1 || reported[0] != 0 {
		t.Fatalf("reported %v, want only [0]", reported)
	}
	if res.Targets[1].Verdict == VerdictClosed {
		t.Fatalf("cut-short target is %s", res.Targets[1].Verdict)
	}
}

// Memory grows with concurrency, not with targets: with SummaryOnly the
// Result retains a small, fixed amount per finished target.
func TestRunSummaryOnlyMemory(t *testing.T) {
	srvs := make([]string, 4)
	for i := range srvs {
		srvs[i] = smtptest.Serve(t, smtptest.Closed554())
	}
	retained := func(n int, summary bool) float64 {
		targets := make([]string, n)
		for i := range targets {
			targets[i] = srvs[i%len(srvs)]
		}
		res, err := Run(context.Background(), Options{Targets: targets, MailDomain: "example.com", HeloName: "probe.example.net",
			SummaryOnly: summary, OnTarget: func(int, TargetResult) {}, Concurrency: 8, PerHost: 8})
		if err != nil {
			t.Fatal(err)
		}
		// What the Result holds: the heap with it, minus the heap
		// without it (the servers' own session records stay in both).
		var with, without runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&with)
		runtime.KeepAlive(res)
		res = nil
		runtime.GC()
		runtime.ReadMemStats(&without)
		return float64(int64(with.HeapAlloc)-int64(without.HeapAlloc)) / float64(n)
	}
	full := retained(24, false)
	sum := retained(24, true)
	t.Logf("retained per target: %.0f B with detail, %.0f B summary only", full, sum)
	if sum > full/10 || sum > 4<<10 {
		t.Fatalf("summary mode retains %.0f B per target (full: %.0f B)", sum, full)
	}
}

// BenchmarkAuditN audits N closed and open smtptest hosts (N/4 servers,
// each named by 4 targets) and reports hosts per second and allocations.
func BenchmarkAuditN(b *testing.B) {
	for _, n := range []int{16, 64} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			var targets []string
			for i := 0; i < n/4; i++ {
				pol := smtptest.Closed554()
				if i%4 == 0 {
					pol = smtptest.Open()
				}
				a := smtptest.Serve(b, pol)
				targets = append(targets, a, a, a, a)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				res, err := Run(context.Background(), Options{Targets: targets, MailDomain: "example.com", HeloName: "probe.example.net",
					SummaryOnly: true, OnTarget: func(int, TargetResult) {}, Concurrency: 64, PerHost: 8})
				if err != nil || res.Verdict != VerdictOpen {
					b.Fatalf("%v %v", err, res.Verdict)
				}
			}
			b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "hosts/s")
		})
	}
}

// RoundTrips counts every wait for the server: with PIPELINING a closed
// server costs exactly the greeting, EHLO, one batch and QUIT, on one
// connection, with every command counted.
func TestRunRoundTripsPerConnection(t *testing.T) {
	// SlowAfter is generous so that a loaded test machine cannot make the
	// batch look slow.
	res, srv := testAudit(t, smtptest.Closed554(), func(o *Options) { o.PerHost, o.SlowAfter = 8, 5*time.Second })
	ep := endpoint(t, res, "none")
	if ep.Verdict != VerdictClosed || ep.Connections != 1 || len(srv.Sessions()) != 1 {
		t.Fatalf("%s with %d connections, server saw %d", ep.Verdict, ep.Connections, len(srv.Sessions()))
	}
	if ep.RoundTrips != 4 {
		t.Fatalf("%d round trips; want 4", ep.RoundTrips)
	}
	ran := 0
	for _, tr := range ep.Tests {
		if tr.Outcome != OutcomeSkipped {
			ran++
		}
	}
	// EHLO, MAIL+RCPT per test with RSET between, QUIT.
	if want := 1 + 3*ran - 1 + 1; ep.Commands != want || srv.Sessions()[0].Commands != want {
		t.Fatalf("%d commands counted, server read %d; want %d for %d tests", ep.Commands, srv.Sessions()[0].Commands, want, ran)
	}
}

// Rate spaces new connections over the whole run, across targets.
func TestRunRateAcrossTargets(t *testing.T) {
	a, b := smtptest.Start(t, smtptest.Closed554()), smtptest.Start(t, smtptest.Closed554())
	start := time.Now()
	res, err := Run(context.Background(), Options{Targets: []string{a.Addr(), b.Addr()}, MailDomain: "example.com",
		HeloName: "probe.example.net", Rate: 20, PerHost: 8})
	if err != nil {
		t.Fatal(err)
	}
	n := len(a.Sessions()) + len(b.Sessions())
	if d, min := time.Since(start), time.Duration(n-1)*50*time.Millisecond; d < min {
		t.Fatalf("%d connections in %s at --rate 20; want at least %s", n, d, min)
	}
	if res.Verdict != VerdictClosed || n < 2 {
		t.Fatalf("%s with %d connections", res.Verdict, n)
	}
}
