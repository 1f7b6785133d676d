package audit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// prober runs the matrix against endpoints; one per Run.
type prober struct {
	opts    Options
	limiter *limiter
	gate    *inflight // adaptive in-flight bound (inflight.go)
	now     func() time.Time

	mu      sync.Mutex
	sources map[string]bool
	// hosts holds a semaphore of Options.PerHost slots per address, so
	// the limit holds across targets that share a mail host; an entry
	// lives while someone holds or waits for a slot.
	hosts map[netip.Addr]*hostSem
}

type hostSem struct {
	slots chan struct{}
	users int // holding or waiting
}

// hostSlot takes one of the address's Options.PerHost connection slots
// (one per worker: a worker holds at most one connection at a time) and
// returns its release, or an error if ctx ends first.
func (p *prober) hostSlot(ctx context.Context, a netip.Addr) (func(), error) {
	p.mu.Lock()
	if p.hosts == nil {
		p.hosts = map[netip.Addr]*hostSem{}
	}
	hs := p.hosts[a]
	if hs == nil {
		hs = &hostSem{slots: make(chan struct{}, p.opts.PerHost)}
		p.hosts[a] = hs
	}
	hs.users++
	p.mu.Unlock()
	leave := func() {
		p.mu.Lock()
		if hs.users--; hs.users == 0 {
			delete(p.hosts, a) // nobody holds a slot: a newcomer starts afresh
		}
		p.mu.Unlock()
	}
	select {
	case hs.slots <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-hs.slots; leave() }) }, nil
	case <-ctx.Done():
		leave()
		return func() {}, ctx.Err()
	}
}

func (p *prober) noteSource(a net.Addr) {
	host := a.String()
	if ap, err := netip.ParseAddrPort(host); err == nil {
		host = ap.Addr().Unmap().String()
	}
	p.mu.Lock()
	p.sources[host] = true
	p.mu.Unlock()
}

// endpointSpec is one (MX host, address, port) to probe.
type endpointSpec struct {
	target int
	domain string // {T}; "" for address targets without Options.MailDomain
	// hostName: domain is a host target's own name (no MX, no
	// Options.MailDomain), not necessarily a mail domain of the server.
	hostName   bool
	mxHost     string
	preference int
	addr       netip.Addr
	port       int
}

func hostPort(addr string, port int) string {
	return net.JoinHostPort(addr, strconv.Itoa(port))
}

// testRun is the state of one test while it runs.
type testRun struct {
	res      *TestResult
	helo     string
	auth     string // Case.Auth: a bogus AUTH exchange before MAIL
	phase    int    // 0: MAIL/RCPT check; 1: full transaction with DATA
	done     bool
	attempts int
	// grey: the last answer was greylisting (decision.Retry), with the
	// delay it named (greyDelay, 0 if none).
	grey      bool
	greyDelay time.Duration
}

// ownConn: the test needs a connection of its own (its own EHLO name, or
// an AUTH exchange before its MAIL).
func (t *testRun) ownConn() bool { return t.helo != "" || t.auth != "" }

// epRun is one endpoint (one TLS state) being probed.
type epRun struct {
	p    *prober
	spec endpointSpec
	mode string // TLSNone, TLSImplicit or TLSStartTLS
	res  *EndpointResult

	mu          sync.Mutex
	transcripts []*Transcript
	settled     bool
	// own holds the outcome of each own-name control (C2, C2I, C2B, C2U)
	// once known, by Case.Own: whether the server accepts any local part
	// at a name decides what a LocalForm test at that name proves.
	own map[string]Outcome
	// pendingOpen: a LocalForm test at that name was accepted before its
	// control was known.
	pendingOpen map[string]bool
	heloOnly    bool
	rt, cmds    int
	bannerSet   bool
}

func (er *epRun) addr() string { return hostPort(er.spec.addr.String(), er.spec.port) }

// tlsMode is the TLS mode an endpoint is first probed in: implicit TLS on
// port 465 (RFC 8314 section 3.3), else plain.
func tlsMode(port int) string {
	if port == 465 {
		return TLSImplicit
	}
	return TLSNone
}

// probeEndpoint probes one address and port: the plain (or implicit TLS)
// session, then, if STARTTLS is advertised, the TLS rerun as a separate
// EndpointResult (docs/relay-probes.md §8 test 38).
func (p *prober) probeEndpoint(ctx context.Context, spec endpointSpec) []EndpointResult {
	mode := tlsMode(spec.port)
	// The STARTTLS rerun starts once the plain session's first pass is
	// done, so that it runs while the plain one waits to retry greylisted
	// tests (each endpoint waits in parallel).
	var second *EndpointResult
	var wg sync.WaitGroup
	first, _ := p.runEndpoint(ctx, spec, mode, func(starttls bool) {
		if !starttls || ctx.Err() != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _ := p.runEndpoint(ctx, spec, TLSStartTLS, nil)
			second = &r
		}()
	})
	wg.Wait()
	out := []EndpointResult{first}
	if second != nil {
		out = append(out, *second)
	}
	return out
}

// runEndpoint probes one endpoint in one mode. firstPass, if set, is
// called once every test has had its first attempt (before any wait to
// retry greylisted tests), with whether the server offers STARTTLS.
func (p *prober) runEndpoint(ctx context.Context, spec endpointSpec, mode string, firstPass func(starttls bool)) (res EndpointResult, starttls bool) {
	res = EndpointResult{MXHost: spec.mxHost, Preference: spec.preference, Address: spec.addr.String(),
		Port: spec.port, TLS: mode, Start: p.now(), Tests: []TestResult{}, Transcripts: []Transcript{}}
	er := &epRun{p: p, spec: spec, mode: mode, res: &res}
	if p.opts.Progress != nil {
		fmt.Fprintf(p.opts.Progress, "relaylock: probing %s %s/%s\n", spec.mxHost, er.addr(), mode)
	}
	defer func() {
		er.finish()
		aggregateEndpoint(&res)
	}()
	release, err := p.hostSlot(ctx, spec.addr)
	if err != nil {
		res.Reason = reasonFor(err)
		return res, false
	}
	c, err := er.connect(ctx, p.opts.HeloName)
	if err != nil {
		release()
		res.Reason = reasonFor(err)
		return res, false
	}
	starttls = mode == TLSNone && c.has("STARTTLS")
	cases := matrix
	if mode == TLSStartTLS {
		cases = nil
		for _, cs := range matrix {
			if cs.TLS {
				cases = append(cases, cs)
			}
		}
	} else {
		if p.opts.HeloVariants {
			cases = append(append([]Case(nil), cases...), heloVariants...)
		}
		if p.opts.AuthTests {
			cases = append(append([]Case(nil), cases...), authVariants...)
		}
	}
	if mode == TLSStartTLS && p.opts.AuthTests {
		for _, cs := range authVariants {
			if cs.TLS {
				cases = append(cases, cs)
			}
		}
	}
	tests := er.expand(cases)
	var plain, own []*testRun
	for _, t := range tests {
		switch {
		case t.done:
		case t.ownConn():
			own = append(own, t)
		default:
			plain = append(plain, t)
		}
	}
	er.run(ctx, c, release, plain, own)
	if firstPass != nil {
		firstPass(starttls)
	}
	er.greylistRetries(ctx, tests)
	return res, starttls
}

// greylistRetries retries greylisted tests (controls included) with the
// same sender, recipient and source address (docs/relay-probes.md §8): after
// the delay the server named, else Options.GreylistInterval, again and
// again until none is greylisted or Options.GreylistRetry has passed
// since the first wait began. The endpoint waits on its own goroutine,
// so every endpoint waits in parallel; each attempt is a new connection
// in the transcripts.
func (er *epRun) greylistRetries(ctx context.Context, tests []*testRun) {
	p := er.p
	budget := p.opts.GreylistRetry
	var start time.Time
	for round := 1; ctx.Err() == nil; round++ {
		var grey, greyPlain, greyOwn []*testRun
		var wait time.Duration
		settled := er.isSettled()
		for _, t := range tests {
			// Once the endpoint is open only the controls, which decide
			// what the other results mean, are worth the wait.
			if t.done && t.grey && (!settled || t.res.Kind == "control") {
				grey = append(grey, t)
				wait = max(wait, t.greyDelay)
			}
		}
		if len(grey) == 0 || budget <= 0 {
			break
		}
		if start.IsZero() {
			start = time.Now()
		}
		if wait == 0 {
			wait = p.opts.GreylistInterval
		} else {
			// The named delay counts from the first attempt; a second
			// more is margin for the server's clock.
			wait += time.Second
		}
		left := budget - time.Since(start)
		if left <= 0 {
			break
		}
		wait = min(wait, left)
		for _, t := range grey {
			t.grey, t.done, t.phase, t.attempts = false, false, 0, 0
			t.res.Attempts = round + 1
			if t.ownConn() {
				greyOwn = append(greyOwn, t)
			} else {
				greyPlain = append(greyPlain, t)
			}
		}
		if p.opts.Progress != nil {
			fmt.Fprintf(p.opts.Progress, "relaylock: %s/%s: %d test(s) greylisted (%s); waiting %s before retry %d (at most %s in all)\n",
				er.addr(), er.mode, len(grey), grey[0].res.Reply.String(), wait.Round(time.Second), round, budget)
		}
		// The endpoint gives its in-flight slot back for the wait, so
		// every greylisted endpoint waits in parallel and others are
		// probed meanwhile.
		if p.gate != nil {
			p.gate.release()
		}
		tm := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-tm.C:
		}
		tm.Stop()
		if p.gate != nil {
			// Take a slot again before connecting (Run gives it back
			// when the endpoint ends, also after cancellation).
			p.gate.reacquire(ctx)
		}
		rel, err := p.hostSlot(ctx, er.spec.addr)
		if err != nil {
			for _, t := range grey {
				er.setOutcome(t, decision{Outcome: OutcomeInconclusive, Reason: ReasonDeadline}, nil, -1)
			}
			break
		}
		c, err := er.connect(ctx, p.opts.HeloName)
		if err != nil {
			rel()
			for _, t := range grey {
				if !t.done {
					er.setOutcome(t, decision{Outcome: OutcomeInconclusive, Reason: reasonWord(reasonFor(err))}, nil, -1)
				}
			}
			break
		}
		er.run(ctx, c, rel, greyPlain, greyOwn)
	}
	for _, t := range tests {
		if t.done && t.grey {
			t.res.Reason = ReasonGreylisted
			if !start.IsZero() {
				t.res.Reason += fmt.Sprintf(" (still greylisted after %d attempts over %s; --greylist-retry sets the wait)",
					max(t.res.Attempts, 1), time.Since(start).Round(time.Second))
			}
		}
	}
}

// run runs tests on the endpoint. The plain ones go first to c (the
// greeting connection, holding the address slot that release frees) as
// one pipelined batch: greeting, EHLO, batch, QUIT are 4 round trips. If
// its replies come too slowly (a server that delays every reply or
// tarpits every refusal) or the server hangs up, the tests not yet
// answered are spread over up to PerHost connections, at most
// TestsPerConn on one (below Postfix's smtpd_soft_error_limit), with the
// tests that need their own HELO (own) one per connection.
func (er *epRun) run(ctx context.Context, c *client, release func(), plain, own []*testRun) {
	var rest []*testRun
	if len(plain) > 0 {
		rest, c = er.first(ctx, c, plain)
	}
	per := min(er.p.opts.TestsPerConn, max(1, (len(rest)+er.p.opts.PerHost-1)/er.p.opts.PerHost))
	var batches [][]*testRun
	for i := 0; i < len(rest); i += per {
		batches = append(batches, rest[i:min(i+per, len(rest))])
	}
	for _, t := range own {
		batches = append(batches, []*testRun{t})
	}
	if len(batches) == 0 && c != nil {
		c.quit()
		er.count(c)
		c = nil
	}
	queue := make(chan []*testRun, len(batches))
	for _, b := range batches {
		queue <- b
	}
	close(queue)
	workers := min(er.p.opts.PerHost, len(batches))
	if workers == 0 {
		release()
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		var first *client
		rel := release
		if w == 0 {
			first = c
		}
		wg.Add(1)
		go func(c *client, w int) {
			defer wg.Done()
			if w > 0 {
				// Every worker but the first (which has the greeting
				// connection and its slot) takes its own slot.
				var err error
				if rel, err = er.p.hostSlot(ctx, er.spec.addr); err != nil {
					return // batches left in the queue are settled below
				}
			}
			defer rel()
			for b := range queue {
				// The controls always run: they decide what every other
				// result means (§8), also once the endpoint is open.
				if er.isSettled() && !hasControl(b) {
					er.skip(b)
					if c != nil {
						c.quit()
						er.count(c)
						c = nil
					}
					continue
				}
				helo := er.p.opts.HeloName
				if b[0].ownConn() {
					if b[0].helo != "" {
						helo = b[0].helo
					}
					if c != nil {
						c.quit()
						er.count(c)
						c = nil
					}
				}
				er.runBatch(ctx, c, b, helo)
				c = nil
			}
			if c != nil {
				c.quit()
				er.count(c)
			}
		}(first, w)
	}
	wg.Wait()
	for b := range queue {
		// Workers that never got a slot (cancelled) leave batches behind.
		er.runBatch(ctx, nil, b, er.p.opts.HeloName)
	}
}

// skip settles the tests of a batch not run because the endpoint is
// already open: "skipped" if nothing of them was sent, else what the
// server answered (rcptOnly).
func (er *epRun) skip(b []*testRun) {
	for _, t := range b {
		switch {
		case t.done:
		case t.phase == 1 && er.p.opts.Catcher == nil:
			er.rcptOnly(t)
		default:
			t.done = true
			t.res.Outcome = OutcomeSkipped
			t.res.Reason = "not sent: the endpoint was already found open (--all-tests runs every test)"
		}
	}
}

// rcptOnly records a test whose MAIL and RCPT were sent and accepted but
// whose DATA is not tried because the endpoint is already open: the
// server's real answer, never "skipped", which means not sent.
func (er *epRun) rcptOnly(t *testRun) {
	er.setOutcome(t, decision{Outcome: OutcomeOpenPotential,
		Reason: "RCPT accepted; DATA not tried: the endpoint was already found open (--all-tests tries it)"}, t.res.Reply, -1)
}

func (er *epRun) isSettled() bool {
	er.mu.Lock()
	defer er.mu.Unlock()
	return er.settled && !er.p.opts.AllTests
}

// finish copies transcripts and counters into the result.
func (er *epRun) finish() {
	er.mu.Lock()
	defer er.mu.Unlock()
	for _, tr := range er.transcripts {
		if tr.End.IsZero() {
			tr.End = er.p.now()
		}
		er.res.Transcripts = append(er.res.Transcripts, *tr)
	}
	er.res.Connections = len(er.transcripts)
	er.res.RoundTrips, er.res.Commands = er.rt, er.cmds
	er.res.End = er.p.now()
}

// count adds a closed client's counters.
func (er *epRun) count(c *client) {
	if c == nil {
		return
	}
	er.mu.Lock()
	er.rt += c.roundTrips
	er.cmds += c.commands
	c.roundTrips, c.commands = 0, 0
	er.mu.Unlock()
}

var errGreeting = errors.New("greeting refused")

// connect opens a session: TCP (and TLS for port 465), greeting, EHLO or
// HELO, and STARTTLS with a new EHLO for the "starttls" endpoint.
func (er *epRun) connect(ctx context.Context, helo string) (*client, error) {
	er.mu.Lock()
	idx := len(er.transcripts)
	er.transcripts = append(er.transcripts, &Transcript{Conn: idx, Remote: er.addr()})
	er.mu.Unlock()
	c, err := er.p.dial(ctx, er.spec.mxHost, er.addr(), er.mode == TLSImplicit, idx)
	er.mu.Lock()
	er.transcripts[idx] = c.tr
	er.mu.Unlock()
	if err != nil {
		er.count(c)
		return nil, err
	}
	// Waiting for the greeting is a round trip too (the server's first
	// flush), so RoundTrips per connection is greeting + EHLO + one per
	// pipelined batch + QUIT: 4 with PIPELINING (RFC 2920).
	c.roundTrips++
	if c.banner.Code != 220 {
		// RFC 5321 §3.1: 554 = no service here; 4xx/421 = try later.
		c.quit()
		er.count(c)
		return nil, &ProbeError{Host: er.spec.mxHost, Addr: er.addr(), Command: "greeting", Code: c.banner.Code,
			Enhanced: c.banner.Enhanced, Line: c.banner.String(), Err: errGreeting}
	}
	var ref *Reply
	er.mu.Lock()
	heloOnly := er.heloOnly
	er.mu.Unlock()
	if heloOnly {
		ref, err = c.cmd("HELO " + helo)
		if err == nil && ref.Code/100 == 2 {
			ref, c.helo, c.ext = nil, "HELO", map[string]string{}
		}
	} else {
		ref, err = c.hello(helo)
		if err == nil && ref != nil && ref.Code == 503 {
			// Some servers answer HELO after a refused EHLO with 503;
			// §8: reconnect and send HELO only.
			c.quit()
			er.count(c)
			er.mu.Lock()
			er.heloOnly = true
			er.mu.Unlock()
			return er.connect(ctx, helo)
		}
	}
	if err != nil {
		er.count(c)
		return nil, err
	}
	if ref != nil {
		c.quit()
		er.count(c)
		return nil, &ProbeError{Host: er.spec.mxHost, Addr: er.addr(), Command: "EHLO/HELO", Code: ref.Code,
			Enhanced: ref.Enhanced, Line: ref.String(), Err: errHeloRefused}
	}
	if er.mode == TLSStartTLS {
		if !c.has("STARTTLS") {
			c.quit()
			er.count(c)
			return nil, &ProbeError{Host: er.spec.mxHost, Addr: er.addr(), Command: "STARTTLS",
				Err: fmt.Errorf("%w: STARTTLS no longer advertised", ErrTLS)}
		}
		if err := c.startTLS(helo); err != nil {
			er.count(c)
			return nil, err
		}
	}
	er.mu.Lock()
	if !er.bannerSet {
		er.bannerSet = true
		er.res.Banner = c.banner.Text()
		er.res.BannerHost = bannerHost(c.banner)
		er.res.Extensions = extensionList(c)
		er.res.TLSInfo = c.tls
	}
	er.mu.Unlock()
	return c, nil
}

// bannerHost is the first word after the code if it looks like a host
// name (nmap's `%d+%s([%w]+[%w%.-]*)`), else "".
func bannerHost(r *Reply) string {
	if r == nil || len(r.Lines) == 0 {
		return ""
	}
	w, _, _ := strings.Cut(strings.TrimSpace(r.Lines[0]), " ")
	w = strings.TrimSuffix(strings.ToLower(w), ".")
	if w == "" || len(w) > 253 || !strings.Contains(w, ".") {
		return ""
	}
	for i := 0; i < len(w); i++ {
		ch := w[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '-') {
			return ""
		}
	}
	return w
}

func extensionList(c *client) []string {
	var out []string
	for k, v := range c.ext {
		if v != "" {
			k += " " + v
		}
		out = append(out, k)
	}
	sort.Strings(out)
	if c.helo == "HELO" {
		out = append([]string{"(HELO only)"}, out...)
	}
	return out
}

// reasonFor maps a session-setup error to an inconclusive reason.
func reasonFor(err error) string {
	var pe *ProbeError
	detail := err.Error()
	word := ReasonDropped
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		word = ReasonDeadline
	case errors.Is(err, errGreeting) && errors.As(err, &pe) && pe.Code == 554:
		word = ReasonRefused
	case errors.Is(err, errGreeting):
		word = ReasonGreetingTemp
	case errors.Is(err, ErrTimeout):
		word = ReasonTimeout
	case errors.Is(err, ErrUnreachable):
		word = ReasonUnreachable
	case errors.Is(err, ErrTLS):
		word = ReasonTLS
	case errors.Is(err, errHeloRefused):
		word = ReasonHeloRefused
	case errors.Is(err, ErrProtocol):
		word = ReasonProtocol
	}
	if errors.As(err, &pe) && pe.Command == "connect" {
		if why := connectFailure(err); why != "" {
			detail = why
		}
	}
	return word + " (" + detail + ")"
}

// reasonWord is the reason without its detail.
func reasonWord(reason string) string {
	w, _, _ := strings.Cut(reason, " (")
	return w
}

// literal is the content of an address literal (RFC 5321 §4.1.3).
func literal(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return "IPv6:" + a.String()
}

func loopback(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "127.0.0.1"
	}
	return "IPv6:::1"
}

// expand turns cases into tests for this endpoint; tests that cannot run
// are marked skipped with the reason.
func (er *epRun) expand(cases []Case) []*testRun {
	o := &er.p.opts
	er.res.Tests = make([]TestResult, len(cases))
	runs := make([]*testRun, len(cases))
	for i, cs := range cases {
		tr := &er.res.Tests[i]
		*tr = TestResult{ID: cs.ID, Title: cs.Title, Kind: cs.Kind}
		t := &testRun{res: tr}
		runs[i] = t
		cp := caseParams{U: NewToken(), R: NewToken(), P: o.ProbeDomain, T: er.spec.domain,
			B: er.res.BannerHost, MH: er.spec.mxHost, I: literal(er.spec.addr), LO: loopback(er.spec.addr)}
		if er.spec.mxHost != "" && er.spec.mxHost != er.res.BannerHost && er.spec.mxHost != er.spec.addr.String() {
			cp.M = er.spec.mxHost
		}
		if _, err := netip.ParseAddr(cp.MH); err == nil {
			cp.MH = ""
		}
		delivering := cs.Kind != "control" && !cs.Info && (o.Depth == DepthDeliver)
		if delivering {
			tr.Token = NewToken()
		}
		victimAddr := o.To
		cp.From = o.From
		if cp.From == "" {
			cp.From = cp.U + "@" + cp.P
		}
		if delivering && o.Catcher != nil {
			victimAddr = o.Catcher.Recipient(tr.Token)
			cp.From = o.Catcher.BounceAddress(tr.Token)
		}
		if i := strings.LastIndexByte(victimAddr, '@'); i > 0 {
			cp.L, cp.V = victimAddr[:i], victimAddr[i+1:]
		}
		from, err1 := expand(cs.From, cp)
		to, err2 := expand(cs.To, cp)
		helo, err3 := expand(cs.Helo, cp)
		tr.MailFrom, tr.RcptTo, tr.Helo, t.helo = from, to, helo, helo
		tr.Auth, t.auth = cs.Auth, cs.Auth
		for _, err := range []error{err1, err2, err3} {
			if err != nil {
				t.done, tr.Outcome, tr.Reason = true, OutcomeSkipped, err.Error()
				break
			}
		}
		if !t.done && cs.ID == "C1P" && !er.spec.hostName {
			t.done, tr.Outcome, tr.Reason = true, OutcomeSkipped, "only for a host target without --mail-domain (C1 asks the domain's postmaster)"
		}
		if t.done {
			continue
		}
		if err := checkPath("MAIL FROM:", from); err != nil {
			t.done, tr.Outcome, tr.Reason = true, OutcomeSkipped, "sender "+err.Error()
		} else if err := checkPath("RCPT TO:", to); err != nil {
			t.done, tr.Outcome, tr.Reason = true, OutcomeSkipped, "recipient "+err.Error()
		}
	}
	return runs
}

// setOutcome records a decided test.
func (er *epRun) setOutcome(t *testRun, d decision, rep *Reply, conn int) {
	t.done = true
	t.res.Outcome, t.res.Reason = d.Outcome, d.Reason
	t.grey, t.greyDelay = d.Retry, d.Delay
	if d.Retry && rep != nil && t.res.Greylisted == nil {
		t.res.Greylisted = rep
	}
	if rep != nil {
		t.res.Reply = rep
	}
	if conn >= 0 {
		t.res.Conn = conn
	}
	er.mu.Lock()
	defer er.mu.Unlock()
	cs := caseByID[t.res.ID]
	if t.res.Kind == "control" && cs.Own != "" && !d.Retry {
		if er.own == nil {
			er.own = map[string]Outcome{}
		}
		er.own[cs.Own] = d.Outcome
		if (isClosedOutcome(d.Outcome) || d.Outcome == OutcomeSenderRefused) && er.pendingOpen[cs.Own] {
			er.settled = true
		}
	}
	if _, open := isOpen(d.Outcome); open && t.res.Kind != "control" && t.res.Kind != "info" {
		// A form that ends at one of the server's own names settles the
		// endpoint only when the server refuses a random local part at
		// that name: otherwise its acceptance may be local delivery
		// (aggregateEndpoint).
		if cs.LocalForm && d.Outcome != OutcomeOpenConfirmed {
			ctl := er.own[cs.Own]
			if !isClosedOutcome(ctl) && ctl != OutcomeSenderRefused {
				if ctl == "" {
					if er.pendingOpen == nil {
						er.pendingOpen = map[string]bool{}
					}
					er.pendingOpen[cs.Own] = true
				}
				return
			}
		}
		er.settled = true
	}
}

func hasControl(b []*testRun) bool {
	for _, t := range b {
		if t.res.Kind == "control" {
			return true
		}
	}
	return false
}

// first runs tests on c as one batch (one pipelined group with
// PIPELINING, else one test after another) and returns the tests left
// undecided with the connection, or nil if it ended. The batch is cut
// when it runs past slowAfter and more connections may be used: the
// caller spreads what is left over them.
func (er *epRun) first(ctx context.Context, c *client, tests []*testRun) ([]*testRun, *client) {
	if d := er.slowAfter(c); d > 0 {
		c.cutAt = time.Now().Add(d)
	}
	cut := er.rcptGroup(c, tests)
	c.cutAt = time.Time{}
	if !cut {
		er.dataSteps(ctx, c, tests)
	}
	var rest []*testRun
	for _, t := range tests {
		if !t.done {
			rest = append(rest, t)
		}
	}
	if c.closed {
		er.count(c)
		c = nil
	}
	return rest, c
}

// slowAfter is how long the first batch may take before it is cut: the
// longer of Options.SlowAfter and SlowRTTs round trips (as the EHLO reply
// measured it). 0 (never cut) when there is no other connection to use.
func (er *epRun) slowAfter(c *client) time.Duration {
	o := &er.p.opts
	if o.PerHost < 2 || o.SlowAfter < 0 {
		return 0
	}
	return max(o.SlowAfter, SlowRTTs*c.rtt)
}

// SlowRTTs: a first batch is cut only after this many EHLO round trips,
// so a distant but quick server keeps its one connection.
const SlowRTTs = 4

// runBatch runs tests on c (or new connections), reconnecting when the
// server drops, until every test is decided. It closes the connection.
func (er *epRun) runBatch(ctx context.Context, c *client, tests []*testRun, helo string) {
	pending := tests
	for reconnects := 0; len(pending) > 0; reconnects++ {
		if ctx.Err() != nil || reconnects > len(tests)+2 {
			reason := ReasonDeadline
			if ctx.Err() == nil {
				reason = ReasonDropped
			}
			for _, t := range pending {
				if !t.done {
					er.setOutcome(t, decision{Outcome: OutcomeInconclusive, Reason: reason}, nil, -1)
				}
			}
			break
		}
		if c == nil || c.closed {
			if c != nil {
				er.count(c)
			}
			var err error
			c, err = er.connect(ctx, helo)
			if err == nil && len(tests) == 1 && tests[0].auth != "" {
				if er.authStep(c, tests[0]); tests[0].done {
					c.quit()
					er.count(c)
					return
				}
			}
			if err != nil {
				r := reasonWord(reasonFor(err))
				for _, t := range pending {
					if !t.done {
						er.setOutcome(t, decision{Outcome: OutcomeInconclusive, Reason: r}, nil, -1)
					}
				}
				return
			}
		}
		pending = er.runOn(ctx, c, pending)
	}
	if c != nil {
		c.quit()
		er.count(c)
	}
}

// runOn runs what it can of tests on c and returns the tests still
// undecided (because the connection ended).
func (er *epRun) runOn(ctx context.Context, c *client, tests []*testRun) []*testRun {
	var check []*testRun
	for _, t := range tests {
		if !t.done && t.phase == 0 {
			check = append(check, t)
		}
	}
	if len(check) > 0 {
		er.rcptGroup(c, check)
	}
	er.dataSteps(ctx, c, tests)
	var rest []*testRun
	for _, t := range tests {
		if !t.done {
			rest = append(rest, t)
		}
	}
	return rest
}

// dataSteps runs the DATA step on c for the tests whose RCPT was
// accepted, skipping them once the endpoint is settled (unless a catcher
// waits for their messages).
func (er *epRun) dataSteps(ctx context.Context, c *client, tests []*testRun) {
	for _, t := range tests {
		if t.done || t.phase != 1 {
			continue
		}
		if er.isSettled() && er.p.opts.Catcher == nil {
			// Its MAIL and RCPT were sent and answered (also when the
			// connection closed after an earlier DATA): record what the
			// server said, not "skipped".
			er.rcptOnly(t)
			continue
		}
		if c.closed {
			continue
		}
		er.dataStep(ctx, c, t)
	}
}

func (er *epRun) txnLines(c *client, t *testRun, withData bool) ([]string, bool) {
	var lines []string
	rset := c.used
	if rset {
		lines = append(lines, "RSET")
	}
	lines = append(lines, "MAIL FROM:"+t.res.MailFrom, "RCPT TO:"+t.res.RcptTo)
	if withData {
		lines = append(lines, "DATA")
	}
	c.used = true
	return lines, rset
}

// send runs lines as one pipelined group (RFC 2920 §3.1: RSET, MAIL and
// RCPT may share a group, DATA may end one) when the server offers
// PIPELINING, else one command at a time, stopping after a refused MAIL
// or RCPT.
func (er *epRun) send(c *client, lines []string) ([]*Reply, error) {
	if c.has("PIPELINING") {
		return c.pipeline(lines)
	}
	var reps []*Reply
	for _, l := range lines {
		rep, err := c.cmd(l)
		if err != nil {
			return reps, err
		}
		reps = append(reps, rep)
		if l != "RSET" && rep.Code/100 != 2 {
			break
		}
	}
	return reps, nil
}

// rcptGroup sends [RSET] MAIL RCPT for every test. With PIPELINING the
// whole batch is one write and one round trip.
//
// It reports whether the batch was cut (client.cutAt): the tests not yet
// answered are left undecided, without counting as a drop.
func (er *epRun) rcptGroup(c *client, tests []*testRun) (cut bool) {
	idx := c.tr.Conn
	if c.has("PIPELINING") {
		var lines []string
		var counts []int
		var rsets []bool
		for _, t := range tests {
			l, rs := er.txnLines(c, t, false)
			lines = append(lines, l...)
			counts = append(counts, len(l))
			rsets = append(rsets, rs)
		}
		sent := time.Now()
		reps, err := c.pipeline(lines)
		cut = errors.Is(err, errSlow)
		if cut {
			c.log("*", fmt.Sprintf("relaylock closed this connection: %d of %d replies in %s, slower than the batch allows; the unanswered tests go to other connections",
				len(reps), len(lines), time.Since(sent).Round(time.Millisecond)))
		}
		pos := 0
		for i, t := range tests {
			n := counts[i]
			if pos+n > len(reps) && cut {
				// Not answered in time: run again elsewhere, not a drop.
				t.res.Reply = nil
				return true
			}
			if pos+n > len(reps) {
				// The connection ended while this test was answered; the
				// tests after it were never answered and stay pending.
				er.dropped(t, idx)
				return
			}
			er.decideTxn(t, reps[pos:pos+n], rsets[i], idx)
			if !t.done && t.phase == 0 {
				er.dropped(t, idx) // a 421 among its replies
			}
			pos += n
		}
		return
	}
	for _, t := range tests {
		if !c.cutAt.IsZero() && time.Now().After(c.cutAt) {
			// One command at a time and past the batch's time: the rest go
			// to other connections; this one stays usable.
			c.log("*", "replies slower than the batch allows; the remaining tests go to other connections")
			return true
		}
		lines, rs := er.txnLines(c, t, false)
		reps, err := er.send(c, lines)
		if errors.Is(err, errSlow) {
			c.log("*", "relaylock closed this connection: a reply slower than the batch allows; the unanswered tests go to other connections")
			return true
		}
		er.decideTxn(t, reps, rs, idx)
		if !t.done && t.phase == 0 {
			er.dropped(t, idx)
		}
		if err != nil || c.closed {
			return false
		}
	}
	return false
}

// dropped: the connection ended before t was answered. The test is tried
// once more on a new connection, then left inconclusive(dropped).
func (er *epRun) dropped(t *testRun, conn int) {
	t.attempts++
	t.phase = 0
	if t.attempts >= 2 {
		er.setOutcome(t, decision{Outcome: OutcomeInconclusive, Reason: ReasonDropped}, t.res.Reply, conn)
	}
}

// decideTxn applies the replies to [RSET] MAIL RCPT. A test left
// undecided in phase 0 was cut short (421 or a closed connection).
func (er *epRun) decideTxn(t *testRun, reps []*Reply, rset bool, conn int) {
	if rset {
		if len(reps) == 0 {
			return
		}
		if reps[0].Code == 421 {
			t.res.Reply = reps[0]
			return
		}
		reps = reps[1:]
	}
	if len(reps) == 0 {
		return
	}
	mail := reps[0]
	d := decideMail(mail, t.res.RcptTo)
	if !d.Next {
		if d.Reason == ReasonDropped {
			t.res.Reply = mail
			return
		}
		er.setOutcome(t, d, mail, conn)
		return
	}
	if len(reps) < 2 {
		return
	}
	rcpt := reps[1]
	d = decideRcpt(rcpt, t.res.RcptTo)
	if d.Reason == ReasonDropped {
		t.res.Reply = rcpt
		return
	}
	if !d.Next {
		er.setOutcome(t, d, rcpt, conn)
		return
	}
	t.res.Reply, t.res.Conn = rcpt, conn
	if t.res.Kind == "control" || t.res.Kind == "info" {
		er.setOutcome(t, decision{Outcome: OutcomeAccepted}, rcpt, conn)
		return
	}
	if er.p.opts.Depth == DepthRcpt {
		er.setOutcome(t, decision{Outcome: OutcomeOpenPotential, Reason: "RCPT accepted; DATA not tried (--depth rcpt)"}, rcpt, conn)
		return
	}
	t.phase = 1
}

// dataStep runs the whole transaction again with DATA (§8 "DATA step").
// On 354 it drops the connection without sending "." (depth data), or
// sends the marked test message (depth deliver).
func (er *epRun) dataStep(ctx context.Context, c *client, t *testRun) {
	idx := c.tr.Conn
	lines, rs := er.txnLines(c, t, true)
	reps, _ := er.send(c, lines)
	if len(reps) < len(lines) {
		// MAIL or RCPT changed its mind, or the connection broke.
		t.phase = 0
		er.decideTxn(t, reps, rs, idx)
		if !t.done {
			er.dropped(t, idx)
		}
		return
	}
	data := reps[len(reps)-1]
	d := decideData(data, t.res.RcptTo)
	if !d.Next {
		if d.Reason == ReasonDropped {
			er.dropped(t, idx)
			return
		}
		er.setOutcome(t, d, data, idx)
		return
	}
	o := &er.p.opts
	if o.Depth != DepthDeliver {
		c.log("*", "DATA accepted (354); dropping the connection without sending the final dot")
		c.abort()
		er.setOutcome(t, decision{Outcome: OutcomeOpenLikely, Reason: "DATA got 354 for an external recipient; connection dropped before the final dot"}, data, idx)
		return
	}
	msg := BuildTestMessage(t.res.Token, strings.Trim(t.res.MailFrom, "<>"), strings.Trim(t.res.RcptTo, "<>"), o.Contact, er.p.now())
	c.log("*", fmt.Sprintf("sending test message (%d bytes, token %s)", len(msg), t.res.Token))
	c.conn.SetWriteDeadline(time.Now().Add(o.DataTimeout))
	if _, werr := c.conn.Write(append(msg, ".\r\n"...)); werr != nil {
		c.fail("message", werr)
		er.dropped(t, idx)
		return
	}
	c.log("C", ".")
	c.roundTrips++
	c.commands++
	dot, err := c.read("end of data", o.DataTimeout)
	if err != nil {
		er.setOutcome(t, decision{Outcome: OutcomeInconclusive, Reason: ReasonDropped}, data, idx)
		t.res.Reason = ReasonDropped + " (connection closed after the final dot; the message may or may not be queued)"
		return
	}
	d = decideDot(dot, t.res.RcptTo)
	if !d.Next {
		er.setOutcome(t, d, dot, idx)
		return
	}
	if o.Catcher != nil {
		// Decided after Catcher.Wait (run.go).
		t.done = true
		t.res.Outcome, t.res.Reply, t.res.Conn = OutcomeAccepted, dot, idx
		t.res.Reason = "message accepted; waiting for it at the catcher"
		return
	}
	er.setOutcome(t, decision{Outcome: OutcomeSubmitted,
		Reason: "message accepted for delivery; check the mailbox " + strings.Trim(t.res.RcptTo, "<>") + " for token " + t.res.Token}, dot, idx)
}
