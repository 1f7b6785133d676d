package audit

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit/smtptest"
)

// testAudit audits "example.com", whose MX mx.example.com is an smtptest
// server on 127.0.0.1.
func testAudit(t *testing.T, p smtptest.Policy, mod func(*Options)) (*Result, *smtptest.Server) {
	t.Helper()
	srv := smtptest.Start(t, p)
	_, port, _ := net.SplitHostPort(srv.Addr())
	pn, _ := strconv.Atoi(port)
	opts := Options{
		Targets: []string{"example.com"},
		Resolver: &MockResolver{
			MX:    map[string][]string{"example.com": {"mx.example.com"}},
			Addrs: map[string][]netip.Addr{"mx.example.com": {netip.MustParseAddr("127.0.0.1")}},
		},
		Ports:           []int{pn},
		HeloName:        "probe.example.net",
		ConnectTimeout:  2 * time.Second,
		GreetingTimeout: 3 * time.Second,
		CommandTimeout:  3 * time.Second,
		DataTimeout:     3 * time.Second,
	}
	if mod != nil {
		mod(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := Run(ctx, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res, srv
}

func endpoint(t *testing.T, res *Result, tls string) *EndpointResult {
	t.Helper()
	for i := range res.Targets[0].Endpoints {
		if ep := &res.Targets[0].Endpoints[i]; ep.TLS == tls {
			return ep
		}
	}
	t.Fatalf("no endpoint with tls=%s in %+v", tls, res.Targets[0])
	return nil
}

func test(ep *EndpointResult, id string) *TestResult {
	for i := range ep.Tests {
		if ep.Tests[i].ID == id {
			return &ep.Tests[i]
		}
	}
	return nil
}

func dump(t *testing.T, ep *EndpointResult) {
	t.Helper()
	t.Logf("endpoint %s/%s: %s (%s) %s triggers=%v", ep.Address, ep.TLS, ep.Verdict, ep.Confirmation, ep.Reason, ep.Triggers)
	for _, ts := range ep.Tests {
		t.Logf("  %s %s %s %s %s %s", ts.ID, ts.MailFrom, ts.RcptTo, ts.Outcome, ts.Reason, ts.Reply.String())
	}
}

func TestRunPolicies(t *testing.T) {
	type want struct {
		verdict  Verdict
		reason   string   // substring of the endpoint reason
		triggers []string // must be among the triggers
		not      []string // must not be
		conf     Confirmation
	}
	tests := []struct {
		name   string
		policy smtptest.Policy
		opts   func(*Options)
		want   want
	}{
		{"open", smtptest.Open(), nil, want{verdict: VerdictOpen, conf: ConfirmLikely}},
		{"closed 554", smtptest.Closed554(), nil, want{verdict: VerdictClosed}},
		{"closed 454 is closed, not greylisted", smtptest.Closed454(), nil, want{verdict: VerdictClosed}},
		{"null sender only", smtptest.NullSenderOpen(), func(o *Options) { o.AllTests = true }, want{verdict: VerdictOpen, triggers: []string{"S1"}, not: []string{"S2", "S5"}, conf: ConfirmLikely}},
		{"spoofed local sender", smtptest.SpoofedLocalSenderOpen(), func(o *Options) { o.AllTests = true },
			want{verdict: VerdictOpen, triggers: []string{"S5", "S6", "R23b"}, not: []string{"S1", "S2", "S8", "S10", "S11", "R13", "R18"}, conf: ConfirmLikely}},
		{"percent hack", smtptest.PercentHackOpen(), func(o *Options) { o.AllTests = true },
			want{verdict: VerdictOpen, triggers: []string{"R13", "R14", "R15", "R13b", "R28"}, not: []string{"S1", "S2", "S5", "R16", "R23"}, conf: ConfirmLikely}},
		{"accept then discard", smtptest.AcceptThenDiscard(), nil, want{verdict: VerdictOpen, conf: ConfirmLikely}},
		{"greylist", smtptest.Greylist(), nil, want{verdict: VerdictInconclusive, reason: ReasonGreylisted}},
		{"greylist retried", smtptest.Greylist(), func(o *Options) { o.GreylistRetry = 10 * time.Millisecond }, want{verdict: VerdictClosed}},
		{"tarpit", smtptest.Tarpit(30 * time.Millisecond), nil, want{verdict: VerdictClosed}},
		{"drop after errors", smtptest.DropAfterErrors(3), nil, want{verdict: VerdictClosed}},
		{"HELO only", smtptest.HeloOnly(), nil, want{verdict: VerdictClosed}},
		{"refused greeting", smtptest.Policy{GreetingCode: 554}, nil, want{verdict: VerdictInconclusive, reason: ReasonRefused}},
		{"rcpt depth", smtptest.Open(), func(o *Options) { o.Depth = DepthRcpt }, want{verdict: VerdictOpen, conf: ConfirmPotential}},
		{"late reject at DATA", smtptest.Policy{AcceptAll: true, DataCode: 554}, nil, want{verdict: VerdictClosed}},
		{"blocked vantage (C1 refused)", smtptest.Policy{LocalDomains: []string{"other.test"}}, nil, want{verdict: VerdictInconclusive, reason: ReasonBlocked}},
		{"submission needs auth", smtptest.Policy{RequireAuth: true, Auth: func(u, p string) bool { return false }}, nil, want{verdict: VerdictInconclusive, reason: ReasonBlocked}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, _ := testAudit(t, tc.policy, tc.opts)
			ep := endpoint(t, res, "none")
			if ep.Verdict != tc.want.verdict || !strings.Contains(ep.Reason, tc.want.reason) || ep.Confirmation != tc.want.conf {
				dump(t, ep)
				t.Fatalf("verdict %s (%s) %q; want %s (%s) containing %q", ep.Verdict, ep.Confirmation, ep.Reason, tc.want.verdict, tc.want.conf, tc.want.reason)
			}
			has := map[string]bool{}
			for _, id := range ep.Triggers {
				has[id] = true
			}
			for _, id := range tc.want.triggers {
				if !has[id] {
					t.Errorf("trigger %s missing from %v", id, ep.Triggers)
				}
			}
			for _, id := range tc.want.not {
				if has[id] {
					t.Errorf("trigger %s must not be in %v", id, ep.Triggers)
				}
			}
			if res.Targets[0].Verdict != tc.want.verdict || res.Verdict != tc.want.verdict {
				t.Errorf("target verdict %s, run verdict %s; want %s", res.Targets[0].Verdict, res.Verdict, tc.want.verdict)
			}
			if ep.Verdict == VerdictClosed && test(ep, "C1").Outcome != OutcomeAccepted {
				t.Errorf("closed without C1 accepted")
			}
		})
	}
}

func TestRunAcceptAllFlagged(t *testing.T) {
	res, _ := testAudit(t, smtptest.AcceptThenDiscard(), nil)
	ep := endpoint(t, res, "none")
	if !ep.AcceptAll {
		dump(t, ep)
		t.Fatal("AcceptAll not set for a server that accepts every recipient")
	}
}

func TestRunTarpitBounded(t *testing.T) {
	start := time.Now()
	res, _ := testAudit(t, smtptest.Tarpit(time.Second), func(o *Options) {
		o.CommandTimeout = 200 * time.Millisecond
		o.Deadline = 1500 * time.Millisecond
	})
	ep := endpoint(t, res, "none")
	if ep.Verdict == VerdictClosed || ep.Verdict == VerdictOpen {
		t.Fatalf("a server slower than the command timeout gave %s", ep.Verdict)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("run took %s despite a 5 s deadline", d)
	}
}

func TestRunStartTLS(t *testing.T) {
	res, _ := testAudit(t, smtptest.OpenAfterSTARTTLS(), nil)
	plain, tls := endpoint(t, res, "none"), endpoint(t, res, "starttls")
	if plain.Verdict != VerdictClosed {
		dump(t, plain)
		t.Errorf("plain endpoint %s, want closed", plain.Verdict)
	}
	if tls.Verdict != VerdictOpen {
		dump(t, tls)
		t.Fatalf("starttls endpoint %s, want open", tls.Verdict)
	}
	if tls.TLSInfo == nil || tls.TLSInfo.Verified || tls.TLSInfo.VerifyError == "" || len(tls.TLSInfo.Certificates) != 1 {
		t.Errorf("TLSInfo %+v: want an unverified self-signed chain recorded", tls.TLSInfo)
	}
	if res.Targets[0].Verdict != VerdictOpen {
		t.Errorf("target %s, want open (worst endpoint)", res.Targets[0].Verdict)
	}
}

func TestRunHeloOnlyUsesHelo(t *testing.T) {
	res, srv := testAudit(t, smtptest.HeloOnly(), nil)
	if endpoint(t, res, "none").Verdict != VerdictClosed {
		t.Fatal("not closed")
	}
	for _, s := range srv.Sessions() {
		if !strings.HasPrefix(s.Helo, "probe.example.net") {
			t.Errorf("session %d helo %q", s.ID, s.Helo)
		}
	}
}

// With PIPELINING, a batch of tests costs one round trip: greeting, EHLO,
// the batch and QUIT = 4 server flushes per connection (≤ 6 allowed).
func TestRunPipeliningRoundTrips(t *testing.T) {
	res, srv := testAudit(t, smtptest.Closed554(), nil)
	if endpoint(t, res, "none").Verdict != VerdictClosed {
		t.Fatal("not closed")
	}
	for _, s := range srv.Sessions() {
		if s.Flushes > 6 {
			t.Errorf("session %d: %d round trips for %d commands", s.ID, s.Flushes, s.Commands)
		}
		if s.Commands < 10 && s.ID != len(srv.Sessions()) {
			t.Logf("session %d: only %d commands", s.ID, s.Commands)
		}
	}
	noPipe := smtptest.Closed554()
	noPipe.Pipelining = false
	res2, srv2 := testAudit(t, noPipe, nil)
	ep1, ep2 := endpoint(t, res, "none"), endpoint(t, res2, "none")
	if ep2.Verdict != VerdictClosed || ep2.RoundTrips <= ep1.RoundTrips {
		t.Errorf("without pipelining: %s with %d round trips; with: %d", ep2.Verdict, ep2.RoundTrips, ep1.RoundTrips)
	}
	_ = srv2
}

// A server that hangs up after a few errors makes relaylock spread the
// matrix over new connections, never more than PerHost at once (the
// server counts its side, and closes first, so the count is exact).
func TestRunPerHostLimit(t *testing.T) {
	p := smtptest.DropAfterErrors(6)
	p.Pipelining = true
	p.Delay = 2 * time.Millisecond
	res, srv := testAudit(t, p, func(o *Options) { o.PerHost = 2; o.TestsPerConn = 4 })
	if endpoint(t, res, "none").Verdict != VerdictClosed {
		t.Fatal("not closed")
	}
	if m := srv.MaxConcurrent(); m > 2 || m < 1 {
		t.Fatalf("max concurrent connections %d, want 1..2", m)
	}
	if n := len(srv.Sessions()); n < 3 {
		t.Fatalf("%d sessions: the matrix was not spread over connections", n)
	}
}

// The endpoint's tests go to one connection as one batch; the batch is
// cut and the rest spread over more connections only when the replies
// are slow: a slow link keeps one connection, a slow server or a tarpit
// gets more, and each connection still costs at most 4 round trips.
func TestRunFirstBatchThenSpread(t *testing.T) {
	latency := smtptest.Closed554()
	latency.Latency = 30 * time.Millisecond
	slow := smtptest.Closed554()
	slow.Delay = 10 * time.Millisecond // 170 replies: 1.7 s on one connection
	noPipe := smtptest.Closed554()
	noPipe.Pipelining = false
	noPipe.Delay = 10 * time.Millisecond
	tests := []struct {
		name      string
		p         smtptest.Policy
		slowAfter time.Duration
		oneConn   bool
	}{
		// A generous SlowAfter: the point is that a slow link is never cut,
		// whatever the load on the machine running the test.
		{"slow link: one connection", latency, 3 * time.Second, true},
		{"slow server: spread", slow, 0, false},
		{"slow server, never cut: one connection", slow, -1, true},
		{"tarpit: spread", smtptest.Tarpit(300 * time.Millisecond), 0, false},
		{"no pipelining, slow: spread", noPipe, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, srv := testAudit(t, tc.p, func(o *Options) { o.SlowAfter = tc.slowAfter; o.PerHost = 16 })
			ep := endpoint(t, res, "none")
			if ep.Verdict != VerdictClosed {
				t.Fatalf("verdict %s", ep.Verdict)
			}
			for _, tr := range ep.Tests {
				if tr.Outcome == OutcomeInconclusive {
					t.Errorf("%s inconclusive: %s", tr.ID, tr.Reason)
				}
			}
			sessions := srv.Sessions()
			if tc.oneConn && (ep.Connections != 1 || len(sessions) != 1 || ep.RoundTrips != 4) {
				t.Fatalf("%d connections (server saw %d), %d round trips; want 1 and 4", ep.Connections, len(sessions), ep.RoundTrips)
			}
			if !tc.oneConn && ep.Connections < 3 {
				t.Fatalf("%d connections: a slow batch was not spread", ep.Connections)
			}
			if tc.p.Pipelining && ep.RoundTrips > 4*ep.Connections {
				t.Errorf("%d round trips on %d connections", ep.RoundTrips, ep.Connections)
			}
			if !tc.oneConn {
				cut := false
				for _, line := range ep.Transcripts[0].Lines {
					cut = cut || strings.Contains(line.Text, "the unanswered tests go to other connections") ||
						strings.Contains(line.Text, "the remaining tests go to other connections")
				}
				if !cut {
					t.Errorf("the first transcript does not say why the batch was cut")
				}
			}
		})
	}
}

func TestRunUnreachable(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	ctx := context.Background()
	res, err := Run(ctx, Options{Targets: []string{addr}, ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ep := res.Targets[0].Endpoints[0]
	if ep.Verdict != VerdictInconclusive || !strings.HasPrefix(ep.Reason, ReasonUnreachable) {
		t.Fatalf("%s %q, want inconclusive unreachable", ep.Verdict, ep.Reason)
	}
	if res.Targets[0].Kind != "address" {
		t.Errorf("kind %q", res.Targets[0].Kind)
	}
}

func TestRunNullMX(t *testing.T) {
	res, err := Run(context.Background(), Options{Targets: []string{"example.org"},
		Resolver: &MockResolver{MX: map[string][]string{"example.org": {"."}}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Targets[0].Verdict != VerdictNoMail || len(res.Targets[0].Endpoints) != 0 {
		t.Fatalf("%+v", res.Targets[0])
	}
}

func TestRunBadTargets(t *testing.T) {
	for _, s := range []string{"", "user@example.com", "exa mple.com", "[example.com]:25", "example.com:0", "example.com:99999", "::"} {
		_, err := Run(context.Background(), Options{Targets: []string{s}, Resolver: &MockResolver{}})
		if err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}

func TestRunDeliverSubmitted(t *testing.T) {
	var mu sync.Mutex
	var got []smtptest.Message
	p := smtptest.Open()
	p.Deliver = func(m smtptest.Message) { mu.Lock(); got = append(got, m); mu.Unlock() }
	res, _ := testAudit(t, p, func(o *Options) {
		o.Depth = DepthDeliver
		o.To = "me@mailbox.example.org"
		o.Contact = "ops@example.org"
	})
	ep := endpoint(t, res, "none")
	if ep.Verdict != VerdictOpen {
		dump(t, ep)
		t.Fatal("not open")
	}
	// Every submitted test's token is in a delivered message, and every
	// delivered message is one of ours. Tests run on parallel
	// connections, so the order of arrival is not the order of tests.
	mu.Lock()
	defer mu.Unlock()
	delivered := map[string]bool{}
	for _, m := range got {
		d := string(m.Data)
		i := strings.Index(d, "X-Relaylock-Token: ")
		if i < 0 {
			t.Fatalf("delivered message without a token:\n%s", d)
		}
		tok, _, _ := strings.Cut(d[i+len("X-Relaylock-Token: "):], "\r\n")
		delivered[tok] = true
	}
	n := 0
	for _, ts := range ep.Tests {
		if ts.Outcome == OutcomeSubmitted {
			n++
			if ts.Token == "" || !delivered[ts.Token] {
				t.Errorf("test %s: token %q not among the %d delivered messages", ts.ID, ts.Token, len(got))
			}
		}
	}
	if n == 0 {
		t.Fatal("no test was submitted")
	}
}

// fakeCatcher "receives" the tokens of messages the smtptest server
// delivered to the catch domain.
type fakeCatcher struct {
	mu  sync.Mutex
	got map[string]bool
}

func (f *fakeCatcher) Recipient(tok string) string     { return tok + "@catch.example.org" }
func (f *fakeCatcher) BounceAddress(tok string) string { return "b-" + tok + "@catch.example.org" }
func (f *fakeCatcher) Wait(ctx context.Context, tokens []string) map[string]*CatchEvidence {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]*CatchEvidence{}
	for _, t := range tokens {
		if f.got[t] {
			out[t] = &CatchEvidence{Arrived: true}
		}
	}
	return out
}

func TestRunCatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy smtptest.Policy
		want   Verdict
		conf   Confirmation
	}{
		{"open relay confirmed", smtptest.Open(), VerdictOpen, ConfirmConfirmed},
		{"accept everything, deliver nothing is closed", smtptest.Policy{AcceptAll: true, Pipelining: true}, VerdictClosed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := &fakeCatcher{got: map[string]bool{}}
			p := tc.policy
			if p.RelayOpen {
				p.Deliver = func(m smtptest.Message) {
					fc.mu.Lock()
					for _, r := range m.RcptTo {
						if l, d, _ := strings.Cut(r, "@"); d == "catch.example.org" {
							fc.got[l] = true
						}
					}
					fc.mu.Unlock()
				}
			}
			res, _ := testAudit(t, p, func(o *Options) { o.Catcher = fc; o.CatchWait = time.Second })
			ep := endpoint(t, res, "none")
			if ep.Verdict != tc.want || ep.Confirmation != tc.conf {
				dump(t, ep)
				t.Fatalf("%s (%s), want %s (%s)", ep.Verdict, ep.Confirmation, tc.want, tc.conf)
			}
		})
	}
}

func TestRunOnEndpointAndVantage(t *testing.T) {
	var calls int
	res, _ := testAudit(t, smtptest.Closed554(), func(o *Options) {
		o.OnEndpoint = func(i int, ep EndpointResult) {
			if i != 0 || ep.Verdict != VerdictClosed {
				t.Errorf("OnEndpoint(%d, %s)", i, ep.Verdict)
			}
			calls++
		}
	})
	if calls != 1 {
		t.Errorf("%d OnEndpoint calls", calls)
	}
	if len(res.Vantage.SourceAddrs) != 1 || res.Vantage.SourceAddrs[0] != "127.0.0.1" {
		t.Errorf("vantage %+v", res.Vantage)
	}
	ep := endpoint(t, res, "none")
	if ep.Connections == 0 || ep.RoundTrips == 0 || ep.Commands == 0 || len(ep.Transcripts) != ep.Connections {
		t.Errorf("counters: %d conns, %d round trips, %d commands, %d transcripts", ep.Connections, ep.RoundTrips, ep.Commands, len(ep.Transcripts))
	}
}

// The greylisting retry is one more batch on one more connection, not a
// connection per test.
func TestRunGreylistRetryBatch(t *testing.T) {
	res, srv := testAudit(t, smtptest.Greylist(), func(o *Options) { o.GreylistRetry, o.SlowAfter = 10*time.Millisecond, 5*time.Second })
	ep := endpoint(t, res, "none")
	if ep.Verdict != VerdictClosed {
		t.Fatalf("verdict %s", ep.Verdict)
	}
	if n := len(srv.Sessions()); n != 2 || ep.Connections != 2 || ep.RoundTrips != 8 {
		t.Fatalf("server saw %d sessions; %d connections, %d round trips: want 2 and 8", n, ep.Connections, ep.RoundTrips)
	}
}

// blockingCatcher is a catcher whose Wait blocks, as the real one does,
// until every token asked for has arrived or ctx ends.
type blockingCatcher struct {
	mu      sync.Mutex
	got     map[string]bool
	changed chan struct{}
}

func (f *blockingCatcher) Recipient(tok string) string     { return tok + "@catch.example.org" }
func (f *blockingCatcher) BounceAddress(tok string) string { return "b-" + tok + "@catch.example.org" }
func (f *blockingCatcher) arrive(tok string) {
	f.mu.Lock()
	f.got[tok] = true
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}
func (f *blockingCatcher) Wait(ctx context.Context, tokens []string) map[string]*CatchEvidence {
	for {
		f.mu.Lock()
		out := map[string]*CatchEvidence{}
		for _, t := range tokens {
			if f.got[t] {
				out[t] = &CatchEvidence{Arrived: true}
			}
		}
		ch := f.changed
		f.mu.Unlock()
		if len(out) == len(tokens) {
			return out
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return out
		}
	}
}

// TestCatchWaitIsAMaximum: once an endpoint is confirmed open, its other
// tokens are not waited for (unless AllTests), and the wait ends when
// every endpoint is decided, not after the whole --catch-wait (issue 13
// item 3, issue 16).
func TestCatchWaitIsAMaximum(t *testing.T) {
	for _, all := range []bool{false, true} {
		fc := &blockingCatcher{got: map[string]bool{}, changed: make(chan struct{})}
		p := smtptest.Open()
		var once sync.Once
		p.Deliver = func(m smtptest.Message) {
			// Only the first relayed message arrives; the others are lost.
			once.Do(func() {
				l, _, _ := strings.Cut(m.RcptTo[0], "@")
				fc.arrive(l)
			})
		}
		start := time.Now()
		res, _ := testAudit(t, p, func(o *Options) { o.Catcher = fc; o.CatchWait = 4 * time.Second; o.AllTests = all })
		took := time.Since(start)
		ep := endpoint(t, res, "none")
		if ep.Verdict != VerdictOpen || ep.Confirmation != ConfirmConfirmed {
			dump(t, ep)
			t.Fatalf("all=%v: %s (%s), want open (confirmed)", all, ep.Verdict, ep.Confirmation)
		}
		if !all && took > 3*time.Second {
			t.Errorf("confirmed open, yet the run took %s: it waited for the endpoint's other tokens", took)
		}
		if all && took < 4*time.Second {
			t.Errorf("--all-tests: the run took %s, less than the 4s catch wait", took)
		}
	}
}

// TestAcceptAnyLocalByEveryTargetKind: a closed server that accepts any
// local part at each of its own names (its address literal, its banner
// host, its domain), as IIS SMTP does into its Drop folder, is closed
// whether it is audited by domain, host name or address (issue 13 item
// 1). On the code before, by address: open via R13, R18, R19, R28 at
// [127.0.0.1] and R14, R20 at the banner host.
func TestAcceptAnyLocalByEveryTargetKind(t *testing.T) {
	p := smtptest.Policy{Pipelining: true, AcceptAllLocal: true, Hostname: "mx.example.com"}
	for _, tc := range []struct{ target, kind string }{
		{"example.com", "domain"}, {"mx.example.com", "host"}, {"127.0.0.1", "address"},
	} {
		res, _ := testAudit(t, p, func(o *Options) {
			o.Targets = []string{tc.target}
			o.Resolver = &MockResolver{
				MX:    map[string][]string{"example.com": {"mx.example.com"}},
				Addrs: map[string][]netip.Addr{"mx.example.com": {netip.MustParseAddr("127.0.0.1")}},
			}
		})
		tg := res.Targets[0]
		ep := endpoint(t, res, "none")
		if tg.Kind != tc.kind || tg.Verdict != VerdictClosed {
			dump(t, ep)
			t.Errorf("%s: %s target %s (%s), want a %s target, closed", tc.target, tg.Kind, tg.Verdict, ep.Reason, tc.kind)
		}
	}
}

// TestGreylistedControlIsNotBlocked: with retrying off, a server that
// greylists everything (C1 included) in milter-greylist's words is
// inconclusive(greylisted), never "blocked" and never closed, and the
// run does not wait (issue 13 item 2).
func TestGreylistedControlIsNotBlocked(t *testing.T) {
	p := smtptest.Policy{Pipelining: true, Decide: func(_ *smtptest.Session, _ string) (int, string) {
		return 451, "4.7.1 Greylisting in action, please come back later"
	}}
	start := time.Now()
	res, _ := testAudit(t, p, nil)
	ep := endpoint(t, res, "none")
	if ep.Verdict != VerdictInconclusive || !strings.HasPrefix(ep.Reason, ReasonGreylisted) {
		dump(t, ep)
		t.Fatalf("%s (%s), want inconclusive (greylisted)", ep.Verdict, ep.Reason)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s with retrying off", d)
	}
	if c1 := test(ep, "C1"); c1 == nil || c1.Greylisted == nil {
		t.Errorf("C1 does not record its greylisting reply: %+v", c1)
	}
}

// TestGreylistWaitsInParallel: endpoints waiting out greylisting give
// their concurrency slot back, so with Concurrency 1 two greylisted
// endpoints wait at the same time, not one after the other.
func TestGreylistWaitsInParallel(t *testing.T) {
	var targets []string
	for i := 0; i < 2; i++ {
		srv := smtptest.Start(t, smtptest.Greylist())
		targets = append(targets, srv.Addr())
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := Run(ctx, Options{Targets: targets, MailDomain: "example.com", HeloName: "probe.example.net",
		Concurrency: 1, GreylistRetry: 10 * time.Second, GreylistInterval: 1500 * time.Millisecond,
		ConnectTimeout: 2 * time.Second, GreetingTimeout: 3 * time.Second, CommandTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	for _, tg := range res.Targets {
		if tg.Verdict != VerdictClosed {
			t.Errorf("%s: %s (%s), want closed after the retry", tg.Target, tg.Verdict, tg.Reason)
		}
	}
	if took > 2800*time.Millisecond {
		t.Errorf("two greylisted endpoints with Concurrency 1 took %s: they waited one after the other", took)
	}
}

// TestRunSkippedMeansNotSent: once an endpoint is found open, the tests
// already sent in its batch keep the server's real answer; only tests
// never sent are "skipped" (issue 13 item 5: S2-S12 were "skipped:
// verdict already settled" although their 250 replies were in the
// transcript).
func TestRunSkippedMeansNotSent(t *testing.T) {
	res, _ := testAudit(t, smtptest.Open(), nil)
	ep := endpoint(t, res, "none")
	if ep.Verdict != VerdictOpen {
		t.Fatalf("verdict %s", ep.Verdict)
	}
	sent := map[string]bool{} // "MAIL FROM arg RCPT TO arg"
	for _, tr := range ep.Transcripts {
		from := ""
		for _, l := range tr.Lines {
			if l.Dir == "C" && strings.HasPrefix(l.Text, "MAIL FROM:") {
				from = strings.TrimPrefix(l.Text, "MAIL FROM:")
			}
			if l.Dir == "C" && strings.HasPrefix(l.Text, "RCPT TO:") {
				sent[from+" "+strings.TrimPrefix(l.Text, "RCPT TO:")] = true
			}
		}
	}
	recorded := 0
	for _, ts := range ep.Tests {
		if ts.RcptTo == "" {
			continue
		}
		pair := ts.MailFrom + " " + ts.RcptTo
		if ts.Outcome == OutcomeSkipped && sent[pair] {
			t.Errorf("%s: %s (%s), but MAIL FROM:%s RCPT TO:%s is in the transcript", ts.ID, ts.Outcome, ts.Reason, ts.MailFrom, ts.RcptTo)
		}
		if ts.Outcome != OutcomeSkipped {
			recorded++
			if !sent[pair] {
				t.Errorf("%s: %s, but MAIL FROM:%s RCPT TO:%s was never sent", ts.ID, ts.Outcome, ts.MailFrom, ts.RcptTo)
			}
		}
	}
	if recorded < 10 {
		t.Errorf("only %d tests have a recorded outcome", recorded)
	}
}

// TestRunGreylistWaitsInParallel: the STARTTLS rerun runs while the plain
// session waits to retry its greylisted tests, so a server that greylists
// both costs one wait, not two (issue 13 item 2); and a server that
// greylists nothing costs none.
func TestRunGreylistWaitsInParallel(t *testing.T) {
	const interval = 1500 * time.Millisecond
	p := smtptest.Policy{Pipelining: true, Greylist: true, StartTLS: true}
	start := time.Now()
	res, _ := testAudit(t, p, func(o *Options) { o.GreylistRetry, o.GreylistInterval = 30*time.Second, interval })
	took := time.Since(start)
	for _, mode := range []string{"none", "starttls"} {
		if ep := endpoint(t, res, mode); ep.Verdict != VerdictClosed {
			dump(t, ep)
			t.Fatalf("%s: %s (%s), want closed", mode, ep.Verdict, ep.Reason)
		}
	}
	if took >= 2*interval {
		t.Errorf("took %s: the two sessions waited one after the other (each waits %s)", took, interval)
	}
	start = time.Now()
	testAudit(t, smtptest.Policy{Pipelining: true, StartTLS: true}, func(o *Options) { o.GreylistRetry, o.GreylistInterval = 30*time.Second, interval })
	if took := time.Since(start); took >= interval {
		t.Errorf("a server that greylists nothing took %s", took)
	}
}
