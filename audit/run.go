package audit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Probe depths (docs/relay-probes.md §4).
const (
	DepthRcpt    = "rcpt"    // stop at RCPT: open-potential
	DepthData    = "data"    // DATA, drop on 354 without ".": open-likely (default)
	DepthDeliver = "deliver" // send a marked message; confirmed by a Catcher or the operator's mailbox
)

// Options configure Run. Zero values mean the documented defaults.
type Options struct {
	// Targets are what the operator named: domains, host names or
	// addresses, each with an optional ":port". Nothing else is probed.
	Targets []string
	// Resolver finds mail hosts; required when a target is a name.
	Resolver MailResolver
	// Ports to probe when a target has no port; default [25]. Port 465
	// uses implicit TLS (RFC 8314).
	Ports []int
	// From is the default envelope sender (an address the operator owns,
	// so bounces come back); default {random}@ProbeDomain.
	From string
	// To is the external recipient ({victim}); default
	// "relaytest@"+ProbeDomain. Required for DepthDeliver without Catcher.
	To string
	// ProbeDomain is a domain the operator controls; default
	// "example.net" (RFC 2606), which works but cannot receive bounces.
	ProbeDomain string
	// MailDomain is {target_domain} for host and address targets (for
	// control C1 and the local-sender tests); domain targets use their
	// own name.
	MailDomain string
	// HeloName is the EHLO argument; default the local host name if it
	// is fully qualified, else ProbeDomain.
	HeloName string
	// Depth is DepthRcpt, DepthData (default) or DepthDeliver.
	Depth string
	// Catcher, when set, receives relayed test messages: Depth becomes
	// DepthDeliver, delivering tests send to Catcher.Recipient(token)
	// from Catcher.BounceAddress(token), and Run waits up to CatchWait
	// (default 60 s) for the tokens.
	Catcher   Catcher
	CatchWait time.Duration
	// Contact is named in the test message body (deliver mode).
	Contact string
	// Concurrency is the most endpoints probed at once; 0 chooses it
	// from the open-file limit and the memory available, at most
	// MaxAutoConcurrency (AutoConcurrency). Either way the bound backs
	// off when connects fail on this machine or time out in bulk, and
	// recovers (inflight.go); OnConcurrency hears of every change.
	// Targets are resolved by a bounded pool and fed in order, so no
	// goroutine waits per target. An endpoint's tests go first to one
	// connection as one pipelined batch;
	// if the batch is not answered within SlowAfter (default 500 ms; at
	// least SlowRTTs EHLO round trips; negative: never cut), or the server
	// hangs up, the rest are spread over up to PerHost parallel
	// connections to the address (default 16, over all targets: below
	// Exchange's MaxInboundConnectionPerSource of 20 and Postfix's
	// smtpd_client_connection_count_limit of 50), at most TestsPerConn on
	// one (default 8: below Postfix's smtpd_soft_error_limit of 10).
	Concurrency  int
	PerHost      int
	TestsPerConn int
	SlowAfter    time.Duration
	// Rate limits new connections per second over the whole run (0:
	// unlimited).
	Rate float64
	// Timeouts: connect (15 s), greeting (60 s), each command (60 s),
	// message data and its final reply (120 s).
	ConnectTimeout  time.Duration
	GreetingTimeout time.Duration
	CommandTimeout  time.Duration
	DataTimeout     time.Duration
	// Deadline bounds the whole run (0: none).
	Deadline time.Duration
	// AllTests runs every test even after an endpoint is found open.
	AllTests bool
	// HeloVariants adds the EHLO-trust tests E39a-d (§8 test 39).
	HeloVariants bool
	// AuthTests adds the bogus-AUTH tests A41a-d (§8 test 41): failed
	// logins, which the server may log; opt-in.
	AuthTests bool
	// GreylistRetry bounds the total time an endpoint waits to retry
	// greylisted tests (controls included), with the same sender,
	// recipient and source address, after the delay the server names or
	// GreylistInterval; 0 reports them inconclusive(greylisted) at once.
	// The CLI's default is DefaultGreylistRetry.
	GreylistRetry time.Duration
	// GreylistInterval is the wait before a retry when the server names
	// no delay (default 60 s).
	GreylistInterval time.Duration
	// Dialer opens TCP connections (tests, lab); default net.Dialer.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig is cloned for STARTTLS and implicit TLS. Its RootCAs
	// verify the certificate for the record; verification never stops a
	// probe.
	TLSConfig *tls.Config
	// Progress, if set, gets "relaylock: ..." progress lines.
	Progress io.Writer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnEndpoint is called once per endpoint as it finishes (with the
	// index into Result.Targets), from one goroutine at a time. In catch
	// mode it is called after the catch wait, with final outcomes.
	OnEndpoint func(target int, ep EndpointResult)
	// OnTarget is called once per target as soon as all its endpoints
	// have finished (aggregated, with full detail), from one goroutine at
	// a time; targets with no endpoint to probe (DNS failure, null MX)
	// are reported after resolution. A target cut short by cancellation
	// or Deadline is not reported, so a resumed run probes it again. In
	// catch mode it is called after the catch wait.
	OnTarget func(target int, tr TargetResult)
	// SummaryOnly drops each finished target's tests and transcripts
	// from the returned Result after OnTarget has had them, so memory
	// grows with Concurrency, not with the number of targets. Ignored in
	// catch mode, which needs every test until the catch wait ends.
	SummaryOnly bool
	// VerdictOnly keeps even less of a finished target once OnTarget has
	// had it: its Target, Domain, Kind, Verdict, Reason and Triggers, no
	// DNS facts or endpoints (nil), for callers that stream every target
	// elsewhere (`relaylock audit --format json`). Ignored in catch mode.
	VerdictOnly bool
	// OnStart, if set, is called once before any probe with the Result's
	// header (Start and Options; no targets), for output that streams.
	OnStart func(header Result)
	// OnConcurrency, if set, is called with the in-flight bound at the
	// start and whenever it changes (with the gate's lock held: it must
	// not block).
	OnConcurrency func(Concurrency)
	// DNSServers is recorded in the result (the resolver uses its own).
	DNSServers []string
}

// DefaultGreylistRetry is the CLI's default bound on the greylisting
// wait: past postgrey's default delay of 300 s, with a retry a minute
// apart when the server names no delay.
const DefaultGreylistRetry = 6 * time.Minute

// defaults fills zero values and checks the options.
func (o *Options) defaults() error {
	if len(o.Targets) == 0 {
		return errors.New("no targets")
	}
	if len(o.Ports) == 0 {
		o.Ports = []int{25}
	}
	for _, p := range o.Ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("bad port %d", p)
		}
	}
	if o.ProbeDomain == "" {
		o.ProbeDomain = "example.net"
	} else {
		d, err := NormalizeDomain(o.ProbeDomain)
		if err != nil {
			return fmt.Errorf("probe domain: %w", err)
		}
		o.ProbeDomain = d
	}
	if o.MailDomain != "" {
		d, err := NormalizeDomain(o.MailDomain)
		if err != nil {
			return fmt.Errorf("mail domain: %w", err)
		}
		o.MailDomain = d
	}
	if o.Catcher != nil {
		o.Depth = DepthDeliver
	}
	switch o.Depth {
	case "":
		o.Depth = DepthData
	case DepthRcpt, DepthData:
	case DepthDeliver:
		if o.Catcher == nil && o.To == "" {
			return errors.New("deliver depth needs a recipient mailbox you own (To) or a catcher")
		}
	default:
		return fmt.Errorf("unknown depth %q (rcpt, data or deliver)", o.Depth)
	}
	if o.To == "" {
		o.To = "relaytest@" + o.ProbeDomain
	}
	for _, a := range []struct{ name, v string }{{"recipient", o.To}, {"sender", o.From}} {
		if a.v == "" {
			continue
		}
		if strings.ContainsAny(a.v, "<>\r\n \t") || strings.Count(a.v, "@") != 1 || strings.HasPrefix(a.v, "@") || strings.HasSuffix(a.v, "@") {
			return fmt.Errorf("%s %q is not a plain address local@domain", a.name, a.v)
		}
	}
	if o.HeloName == "" {
		if h, err := os.Hostname(); err == nil && strings.Contains(h, ".") {
			o.HeloName = h
		} else {
			o.HeloName = o.ProbeDomain
		}
	}
	if strings.ContainsAny(o.HeloName, " \r\n\t") {
		return fmt.Errorf("bad HELO name %q", o.HeloName)
	}
	if o.Concurrency <= 0 {
		o.Concurrency, _ = AutoConcurrency()
	}
	if o.PerHost <= 0 {
		o.PerHost = 16
	}
	if o.SlowAfter == 0 {
		o.SlowAfter = 500 * time.Millisecond
	}
	if o.TestsPerConn <= 0 {
		o.TestsPerConn = 8
	}
	if o.GreylistInterval <= 0 {
		o.GreylistInterval = 60 * time.Second
	}
	if o.CatchWait <= 0 {
		o.CatchWait = 60 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 15 * time.Second
	}
	if o.GreetingTimeout <= 0 {
		o.GreetingTimeout = 60 * time.Second
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 60 * time.Second
	}
	if o.DataTimeout <= 0 {
		o.DataTimeout = 120 * time.Second
	}
	if o.Dialer == nil {
		d := &net.Dialer{}
		o.Dialer = d.DialContext
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Run audits the targets and returns the result. It returns an error only
// for bad options or targets (before any probe) or cancellation; failures
// to reach or test a server are inconclusive results, never errors.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	targets := make([]target, len(opts.Targets))
	for i, s := range opts.Targets {
		t, err := parseTarget(s)
		if err != nil {
			return nil, err
		}
		if t.name != "" && opts.Resolver == nil {
			return nil, fmt.Errorf("target %q needs DNS, and no resolver is set", s)
		}
		if _, vd, _ := strings.Cut(opts.To, "@"); opts.Catcher == nil && t.name != "" && strings.EqualFold(vd, t.name) {
			return nil, fmt.Errorf("the test recipient %s is inside the audited domain %s; relay tests need an external recipient", opts.To, t.name)
		}
		targets[i] = t
	}
	if opts.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Deadline)
		defer cancel()
	}
	p := &prober{opts: opts, now: opts.Now, sources: map[string]bool{}}
	p.gate = newInflight(opts.Concurrency, opts.OnConcurrency)
	if opts.Rate > 0 {
		p.limiter = &limiter{interval: time.Duration(float64(time.Second) / opts.Rate)}
	}
	res := &Result{Start: opts.Now(), Targets: make([]TargetResult, len(targets))}
	res.Options = opts.summary()

	// Probe each target's endpoints as soon as its DNS answers are in; a
	// target is finished (OnTarget) when its last endpoint is.
	type slot struct {
		spec endpointSpec
		out  []EndpointResult
	}
	type pending struct {
		slots []*slot
		left  int
	}
	per := make([]pending, len(targets))
	var cbMu sync.Mutex
	stream := opts.Catcher == nil
	// finishTarget aggregates target i, reports it and, in SummaryOnly
	// mode, keeps only its summary. Called with cbMu held.
	finishTarget := func(i int) {
		t := &res.Targets[i]
		for _, s := range per[i].slots {
			t.Endpoints = append(t.Endpoints, s.out...)
			s.out = nil
		}
		per[i].slots = nil
		if t.Endpoints == nil {
			t.Endpoints = []EndpointResult{}
		}
		aggregateTarget(t)
		if ctx.Err() != nil {
			return // cut short: not finished, a resumed run probes it again
		}
		if opts.OnTarget != nil {
			opts.OnTarget(i, *t)
		}
		switch {
		case opts.VerdictOnly:
			*t = TargetResult{Target: t.Target, Domain: t.Domain, Kind: t.Kind, Verdict: t.Verdict, Reason: t.Reason,
				Triggers: t.Triggers, Client: t.Client, WinRMHost: t.WinRMHost}
		case opts.SummaryOnly:
			summarize(t)
		}
	}
	finishSlot := func(s *slot) {
		if opts.Progress != nil {
			for _, ep := range s.out {
				fmt.Fprintf(opts.Progress, "relaylock: %s %s/%s: %s %s\n", ep.MXHost, hostPort(ep.Address, ep.Port), ep.TLS, ep.Verdict, ep.Reason)
			}
		}
		if !stream {
			return
		}
		cbMu.Lock()
		defer cbMu.Unlock()
		if opts.OnEndpoint != nil {
			for _, ep := range s.out {
				opts.OnEndpoint(s.spec.target, ep)
			}
		}
		if per[s.spec.target].left--; per[s.spec.target].left == 0 {
			finishTarget(s.spec.target)
		}
	}
	if opts.OnStart != nil {
		opts.OnStart(Result{Start: res.Start, Options: res.Options})
	}
	if opts.OnConcurrency != nil {
		opts.OnConcurrency(p.gate.state())
	}

	// A feeder hands the targets, in order, to a bounded pool of
	// resolvers; each resolver hands its target's endpoints to the
	// dispatcher, which starts one goroutine per endpoint admitted by the
	// in-flight gate. A resolver waits while the gate is full, so at most
	// resolveWorkers targets are resolved ahead of the probes: goroutines
	// and memory follow the work in flight, not the number of targets.
	fed := make([]bool, len(targets))
	targetQ := make(chan int)
	probeQ := make(chan *slot)
	go func() {
		defer close(targetQ)
		for i := range targets {
			select {
			case targetQ <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var resolvers sync.WaitGroup
	for w := 0; w < min(len(targets), resolveWorkers); w++ {
		resolvers.Add(1)
		go func() {
			defer resolvers.Done()
			for i := range targetQ {
				fed[i] = true
				specs := p.resolve(ctx, i, targets[i], &res.Targets[i])
				mine := make([]*slot, len(specs))
				for j, sp := range specs {
					mine[j] = &slot{spec: sp}
				}
				cbMu.Lock()
				per[i].slots, per[i].left = mine, len(mine)
				if stream && len(mine) == 0 {
					finishTarget(i)
				}
				cbMu.Unlock()
				for _, sl := range mine {
					probeQ <- sl // the dispatcher drains probeQ until it is closed
				}
			}
		}()
	}
	go func() { resolvers.Wait(); close(probeQ) }()
	var probes sync.WaitGroup
	for s := range probeQ {
		if err := p.gate.acquire(ctx); err != nil {
			s.out = []EndpointResult{notTested(p, s.spec)}
			finishSlot(s)
			continue
		}
		probes.Add(1)
		go func() {
			defer probes.Done()
			s.out = p.probeEndpoint(ctx, s.spec)
			p.gate.release()
			finishSlot(s)
		}()
	}
	probes.Wait()
	// Targets the feeder never reached (cancellation or Deadline).
	for i := range targets {
		if !fed[i] {
			notReached(&res.Targets[i], targets[i])
		}
	}

	if !stream {
		for i := range per {
			for _, s := range per[i].slots {
				res.Targets[i].Endpoints = append(res.Targets[i].Endpoints, s.out...)
			}
		}
		p.catch(ctx, res)
		for i := range res.Targets {
			if opts.OnEndpoint != nil {
				for _, ep := range res.Targets[i].Endpoints {
					opts.OnEndpoint(i, ep)
				}
			}
			if res.Targets[i].Endpoints == nil {
				res.Targets[i].Endpoints = []EndpointResult{}
			}
			aggregateTarget(&res.Targets[i])
			if opts.OnTarget != nil && ctx.Err() == nil {
				opts.OnTarget(i, res.Targets[i])
			}
		}
	}
	res.Verdict = overallVerdict(res.Targets)
	res.End = opts.Now()
	res.Vantage = p.vantage(res.Start)
	if err := ctx.Err(); errors.Is(err, context.Canceled) {
		return res, err
	}
	return res, nil
}

// summarize drops a finished target's transcripts and tests, keeping its
// verdicts, reasons, triggers, the triggering tests (WriteSummary prints
// them) and counters (Options.SummaryOnly).
// It copies what it changes: OnTarget may keep the full TargetResult.
func summarize(t *TargetResult) {
	eps := make([]EndpointResult, len(t.Endpoints))
	for j, ep := range t.Endpoints {
		var kept []TestResult
		for _, ts := range ep.Tests {
			if slices.Contains(ep.Triggers, ts.ID) {
				ts.Catch = nil
				kept = append(kept, ts)
			}
		}
		ep.Tests, ep.Transcripts = append([]TestResult{}, kept...), []Transcript{}
		if ep.TLSInfo != nil {
			info := *ep.TLSInfo
			info.Certificates = nil
			ep.TLSInfo = &info
		}
		eps[j] = ep
	}
	t.Endpoints = eps
	t.DNS = nil
}

// resolveWorkers bounds the targets resolved at once (the resolver also
// bounds its queries in flight, DNSConfig).
const resolveWorkers = 64

// notReached fills a target the run ended before: not tested, no
// endpoint.
func notReached(tr *TargetResult, t target) {
	tr.Target = t.raw
	tr.Kind = "address"
	if t.name != "" {
		tr.Kind, tr.Domain = "domain", t.name
	}
	tr.Endpoints = []EndpointResult{}
	tr.Reason = ReasonDeadline + " (not tested)"
	aggregateTarget(tr)
}

func notTested(p *prober, s endpointSpec) EndpointResult {
	mode := tlsMode(s.port)
	return EndpointResult{MXHost: s.mxHost, Preference: s.preference, Address: s.addr.String(), Port: s.port, TLS: mode,
		Verdict: VerdictInconclusive, Reason: ReasonDeadline + " (not tested)", Tests: []TestResult{},
		Transcripts: []Transcript{}, Start: p.now(), End: p.now()}
}

// resolve fills the target's DNS facts and returns its endpoints.
func (p *prober) resolve(ctx context.Context, idx int, t target, tr *TargetResult) []endpointSpec {
	tr.Target = t.raw
	ports := p.opts.Ports
	if t.port != 0 {
		ports = []int{t.port}
	}
	var specs []endpointSpec
	add := func(domain, host string, pref int, addrs []string) {
		for _, a := range addrs {
			ad, err := netip.ParseAddr(a)
			if err != nil {
				continue
			}
			for _, port := range ports {
				specs = append(specs, endpointSpec{target: idx, domain: domain, mxHost: host, preference: pref, addr: ad.Unmap(), port: port})
			}
		}
	}
	if t.name == "" {
		tr.Kind = "address"
		add(p.opts.MailDomain, t.addr.String(), 0, []string{t.addr.String()})
		return specs
	}
	tr.Domain = t.name
	r, err := p.opts.Resolver.MailHosts(ctx, t.name)
	if r != nil {
		tr.DNS = r.Queries
		tr.MX = r.MX
		tr.NullMX = r.NullMX
		tr.DNSNotes = r.Notes
	}
	tr.Kind = "domain"
	if r != nil && !r.NullMX && len(r.MX) > 0 && r.MX[0].Implicit {
		tr.Kind = "host" // RFC 5321 §5.1 implicit MX: the name's own A/AAAA
	}
	if err != nil && (r == nil || len(r.MX) == 0) {
		tr.Reason = "DNS: " + err.Error()
		if errors.Is(err, ErrNXDomain) {
			tr.Reason = "domain does not exist (NXDOMAIN)"
		}
		return nil
	}
	if r.NullMX {
		return nil
	}
	domain := t.name
	if tr.Kind == "host" && p.opts.MailDomain != "" {
		domain = p.opts.MailDomain
	}
	for _, mx := range r.MX {
		add(domain, mx.Host, mx.Preference, mx.Addresses)
	}
	if tr.Kind == "host" && p.opts.MailDomain == "" {
		// {T} is the host's own name, which need not be a mail domain
		// of the server: control C1P (bare postmaster) stands in for C1.
		for i := range specs {
			specs[i].hostName = true
		}
	}
	if len(specs) == 0 {
		tr.Reason = "no mail host has an address"
		if err != nil {
			tr.Reason += ": " + err.Error()
		}
	}
	return specs
}

// catch waits for the tokens of accepted messages and sets their outcome:
// arrived → open-confirmed; bounced → closed (accept-then-bounce);
// nothing → accepted-not-delivered. CatchWait is a maximum: an endpoint
// is decided once one of its tokens arrived (confirmed open; unless
// AllTests) or all of them are accounted for, and the wait ends as soon
// as every endpoint is decided.
func (p *prober) catch(ctx context.Context, res *Result) {
	type epKey struct{ i, j int }
	byEP := map[epKey][]string{}
	var keys []epKey
	total := 0
	for i := range res.Targets {
		for j := range res.Targets[i].Endpoints {
			for _, t := range res.Targets[i].Endpoints[j].Tests {
				if t.Token != "" && t.Outcome == OutcomeAccepted {
					k := epKey{i, j}
					if byEP[k] == nil {
						keys = append(keys, k)
					}
					byEP[k] = append(byEP[k], t.Token)
					total++
				}
			}
		}
	}
	got := map[string]*CatchEvidence{}
	confirmed := map[epKey]bool{}
	start := time.Now()
	if total > 0 {
		if p.opts.Progress != nil {
			fmt.Fprintf(p.opts.Progress, "relaylock: waiting up to %s for %d relayed test messages from %d endpoint(s)\n", p.opts.CatchWait, total, len(keys))
		}
		deadline := start.Add(p.opts.CatchWait)
		for ctx.Err() == nil && time.Now().Before(deadline) {
			var needed []string
			for _, k := range keys {
				if confirmed[k] && !p.opts.AllTests {
					continue
				}
				for _, tok := range byEP[k] {
					if got[tok] == nil {
						needed = append(needed, tok)
					}
				}
			}
			if len(needed) == 0 {
				break
			}
			// Wait in slices, to notice an endpoint confirmed open
			// meanwhile and stop waiting for its other tokens.
			slice := time.Now().Add(250 * time.Millisecond)
			if slice.After(deadline) {
				slice = deadline
			}
			wctx, cancel := context.WithDeadline(ctx, slice)
			for tok, ev := range p.opts.Catcher.Wait(wctx, needed) {
				got[tok] = ev
			}
			cancel()
			for _, k := range keys {
				for _, tok := range byEP[k] {
					if ev := got[tok]; ev != nil && ev.Arrived {
						confirmed[k] = true
					}
				}
			}
		}
		if p.opts.Progress != nil {
			fmt.Fprintf(p.opts.Progress, "relaylock: catch wait over after %s (%d of %d messages accounted for)\n",
				time.Since(start).Round(100*time.Millisecond), len(got), total)
		}
	}
	waited := time.Since(start).Round(time.Second)
	for i := range res.Targets {
		for j := range res.Targets[i].Endpoints {
			ep := &res.Targets[i].Endpoints[j]
			for k := range ep.Tests {
				t := &ep.Tests[k]
				if t.Token == "" || t.Outcome != OutcomeAccepted {
					continue
				}
				ev := got[t.Token]
				switch {
				case ev != nil && ev.Arrived:
					t.Outcome, t.Catch = OutcomeOpenConfirmed, ev
					t.Reason = "the test message arrived at the catcher"
				case ev != nil && ev.Bounce:
					t.Outcome, t.Catch = OutcomeBounced, ev
					t.Reason = "accepted, then bounced (not relayed; backscatter risk)"
				case confirmed[epKey{i, j}] && !p.opts.AllTests:
					t.Reason = "message accepted; not waited for at the catcher: the endpoint was already confirmed open (--all-tests waits)"
				default:
					t.Outcome = OutcomeNotDelivered
					t.Reason = fmt.Sprintf("accepted, but nothing arrived within %s (--catch-wait %s): not relayed (or discarded)", waited, p.opts.CatchWait)
				}
			}
			aggregateEndpoint(ep)
		}
	}
}

func (p *prober) vantage(start time.Time) Vantage {
	v := Vantage{UTC: start.UTC(), LocalOffset: start.Format("-07:00"), SourceAddrs: []string{}}
	if h, err := os.Hostname(); err == nil {
		v.Hostname = h
	}
	p.mu.Lock()
	for a := range p.sources {
		v.SourceAddrs = append(v.SourceAddrs, a)
	}
	p.mu.Unlock()
	sort.Strings(v.SourceAddrs)
	return v
}

// CheckTarget reports whether s is a valid TARGET (see Options.Targets)
// without touching the network; errors wrap ErrBadTarget.
func CheckTarget(s string) error {
	_, err := parseTarget(s)
	return err
}

// Aggregate sets r.Verdict from its targets (the worst one), for a Result
// assembled from parts, such as a resumed run's journal.
func (r *Result) Aggregate() {
	r.Verdict = overallVerdict(r.Targets)
}

// Summary returns the OptionsSummary a Run with these options records
// (defaults applied), or the options' error.
func (o Options) Summary() (OptionsSummary, error) {
	if len(o.Targets) == 0 {
		o.Targets = []string{"summary.invalid"}
	}
	if err := o.defaults(); err != nil {
		return OptionsSummary{}, err
	}
	return o.summary(), nil
}

func (o *Options) summary() OptionsSummary {
	s := OptionsSummary{From: o.From, To: o.To, ProbeDomain: o.ProbeDomain, HeloName: o.HeloName,
		Depth: o.Depth, Ports: o.Ports, DNSServers: o.DNSServers, AllTests: o.AllTests}
	if o.Catcher != nil {
		s.Depth = "catch"
		if d, ok := o.Catcher.(interface{ Domain() string }); ok {
			s.CatchDomain = d.Domain()
		}
		s.To = ""
	}
	return s
}
