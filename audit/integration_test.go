package audit_test

// Integration tests of the relay probe against real MTAs (issue 2 and the
// real-Postfix part of issue 3). Every MTA runs from audit/mtatest on its
// own loopback address, trusts only 127.0.0.254, and sends all outbound
// mail to a sink (or the catcher) on 127.0.0.1; the prober connects from
// 127.0.0.1, outside the trusted network. They need root and the MTAs of
// .ci/setup.d/20-mta.sh: they skip without them, and fail under CI.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/audit/mtatest"
)

// auditInstance audits the instance's mail domain, whose only MX is the
// instance.
func auditInstance(t *testing.T, inst *mtatest.Instance, mod func(*audit.Options)) *audit.Result {
	t.Helper()
	mx := "mx." + inst.Domain
	opts := audit.Options{
		Targets: []string{inst.Domain},
		Resolver: &audit.MockResolver{
			MX:    map[string][]string{inst.Domain: {mx}},
			Addrs: map[string][]netip.Addr{mx: {inst.Addr.Addr()}},
		},
		Ports:           []int{int(inst.Addr.Port())},
		ProbeDomain:     "probe.test",
		To:              "victim@victim.test",
		HeloName:        "prober.probe.test",
		ConnectTimeout:  5 * time.Second,
		GreetingTimeout: 10 * time.Second,
		CommandTimeout:  10 * time.Second,
		DataTimeout:     10 * time.Second,
		CatchWait:       20 * time.Second,
	}
	if mod != nil {
		mod(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := audit.Run(ctx, opts)
	if err != nil {
		t.Fatalf("audit.Run: %v", err)
	}
	if len(res.Targets) != 1 || len(res.Targets[0].Endpoints) == 0 {
		t.Fatalf("audit.Run returned %d targets, want 1 with endpoints", len(res.Targets))
	}
	t.Cleanup(func() {
		if t.Failed() {
			logResult(t, res)
		}
	})
	return res
}

// logResult writes the outcome of every test, for failing tests.
func logResult(t *testing.T, res *audit.Result) {
	for _, tg := range res.Targets {
		t.Logf("target %s: %s (%s) triggers=%v", tg.Target, tg.Verdict, tg.Reason, tg.Triggers)
		for _, ep := range tg.Endpoints {
			t.Logf("  %s:%d/%s: %s %s (%s)", ep.Address, ep.Port, ep.TLS, ep.Verdict, ep.Confirmation, ep.Reason)
			for _, ts := range ep.Tests {
				t.Logf("    %-5s %s -> %s: %s %s %v", ts.ID, ts.MailFrom, ts.RcptTo, ts.Outcome, ts.Reason, replyString(ts.Reply))
			}
		}
	}
}

func replyString(r *audit.Reply) string {
	if r == nil {
		return ""
	}
	return fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, strings.Join(r.Lines, " / "))
}

// epWant is what the audit of one endpoint (plain or STARTTLS) must
// find, with AllTests set so that every test runs.
type epWant struct {
	open bool
	// Closed: the reply to S2 (plain relay), code and enhanced code.
	denyCode     int
	denyEnhanced string
	// Open: tests that must be triggers, and tests that must not.
	must, mustNot []string
}

// expectation is what the audit of one configuration must find. starttls
// is set for the instances that offer STARTTLS (withTLS): the probe reruns
// its TLS tests after STARTTLS as a second endpoint.
type expectation struct {
	plain    epWant
	starttls *epWant
}

// withTLS says which instances offer STARTTLS: the closed ones, so that
// they are shown closed after STARTTLS too, and the mode that needs it.
// OpenSMTPD cannot do TLS here (mtatest.Config.TLS).
func withTLS(kind mtatest.Kind, mode mtatest.Mode) bool {
	return kind != mtatest.OpenSMTPD && (mode == mtatest.Closed || mode == mtatest.OpenAfterSTARTTLS)
}

var (
	postfixOpenAll = epWant{open: true, must: []string{"S1", "S2", "S5", "R15", "R23", "R27"}}
	eximOpen       = epWant{open: true,
		// Exim refuses "%", "!" and "@" in local parts before any
		// relay rule, so only the sender tests and source routes relay.
		must: []string{"S1", "S2", "S5", "S6"}, mustNot: []string{"R15", "R15b", "R27b"}}
)

// smtpdOpen: OpenSMTPD refuses a "%" local part at its own domain as an
// unknown local user.
var smtpdOpen = epWant{open: true, must: []string{"S1", "S2", "S5", "S6"}, mustNot: []string{"R15", "R15b"}}

var expectations = map[mtatest.Kind]map[mtatest.Mode]expectation{
	mtatest.Postfix: {
		// defer_unauth_destination: a 4xx that is a refusal, not
		// greylisting (docs/relay-probes.md §5).
		mtatest.Closed: {plain: epWant{denyCode: 454, denyEnhanced: "4.7.1"},
			starttls: &epWant{denyCode: 454, denyEnhanced: "4.7.1"}},
		mtatest.ClosedReject:     {plain: epWant{denyCode: 554, denyEnhanced: "5.7.1"}},
		mtatest.OpenMynetworks:   {plain: postfixOpenAll},
		mtatest.OpenClientAccess: {plain: postfixOpenAll},
		// Only the null sender relays.
		mtatest.OpenNullSender: {plain: epWant{open: true,
			must: []string{"S1"}, mustNot: []string{"S2", "S3", "S5", "S6", "S10", "R15", "R15b"}}},
		// Senders in (or qualified into) target.test relay: the local
		// and postmaster senders, the banner host and random
		// subdomain (parent_domain_matches_subdomains), the
		// unqualified sender (myorigin), and every recipient form
		// sent with a local sender.
		mtatest.OpenLocalSender: {plain: epWant{open: true,
			must:    []string{"S3", "S5", "S6", "S10", "S12", "R15b", "R23b"},
			mustNot: []string{"S1", "S2", "S4", "S8", "S9", "R15", "R23"}}},
	},
	mtatest.Exim: {
		mtatest.Closed:             {plain: epWant{denyCode: 550}, starttls: &epWant{denyCode: 550}},
		mtatest.OpenMynetworks:     {plain: eximOpen},
		mtatest.OpenRelayToDomains: {plain: eximOpen},
		// Closed in plain text; after STARTTLS the TLS tests relay.
		mtatest.OpenAfterSTARTTLS: {plain: epWant{denyCode: 550},
			starttls: &epWant{open: true, must: []string{"S1", "S2", "S5"}, mustNot: []string{"R15", "R27"}}},
	},
	mtatest.OpenSMTPD: {
		mtatest.Closed:         {plain: epWant{denyCode: 550}},
		mtatest.OpenMynetworks: {plain: smtpdOpen},
		mtatest.OpenFromAny:    {plain: smtpdOpen},
	},
}

// TestIntegrationVerdicts audits every configuration of every real MTA:
// closed ones must be closed (postmaster accepted, every relay attempt
// refused with the MTA's own code), open ones open with the tests that
// really relay as triggers, each with the transcript that shows it, in
// plain text and after STARTTLS. At the default depth (data) the probe
// never completes a message, so nothing may reach the sink.
func TestIntegrationVerdicts(t *testing.T) {
	for _, kind := range mtatest.Kinds {
		for _, mode := range mtatest.Modes(kind) {
			if mode == mtatest.BounceAfterAccept {
				continue // TestIntegrationCatch/bounce
			}
			t.Run(fmt.Sprintf("%s/%s", kind, mode), func(t *testing.T) {
				t.Parallel()
				want, ok := expectations[kind][mode]
				if !ok {
					t.Fatalf("no expectation for %s %s", kind, mode)
				}
				sink := mtatest.StartSink(t)
				inst := mtatest.StartT(t, mtatest.Config{Kind: kind, Mode: mode, RelayHost: sink.Addr(), TLS: withTLS(kind, mode)})
				if (want.starttls != nil) != inst.TLS {
					t.Fatalf("expectation for STARTTLS: %v, instance offers it: %v", want.starttls != nil, inst.TLS)
				}
				res := auditInstance(t, inst, func(o *audit.Options) { o.AllTests = true })
				tg := res.Targets[0]

				wantEPs := []struct {
					tls  string
					want epWant
				}{{"none", want.plain}}
				if want.starttls != nil {
					wantEPs = append(wantEPs, struct {
						tls  string
						want epWant
					}{"starttls", *want.starttls})
				}
				if len(tg.Endpoints) != len(wantEPs) {
					t.Fatalf("%d endpoints, want %d", len(tg.Endpoints), len(wantEPs))
				}
				open := false
				var triggers []string
				for i, w := range wantEPs {
					ep := tg.Endpoints[i]
					if ep.Address != inst.Addr.Addr().String() || ep.Port != int(inst.Addr.Port()) || ep.TLS != w.tls {
						t.Fatalf("endpoint %d is %s:%d/%s, want %s/%s", i, ep.Address, ep.Port, ep.TLS, inst.Addr, w.tls)
					}
					if !strings.Contains(ep.Banner, inst.Hostname) || ep.BannerHost != inst.Hostname {
						t.Errorf("%s: banner %q, banner host %q; want %s", w.tls, ep.Banner, ep.BannerHost, inst.Hostname)
					}
					if w.tls == "starttls" && (ep.TLSInfo == nil || len(ep.TLSInfo.Certificates) == 0 ||
						!slices.Contains(ep.TLSInfo.Certificates[0].DNSNames, inst.Hostname)) {
						t.Errorf("starttls: TLS info %+v does not record the instance's certificate", ep.TLSInfo)
					}
					c1 := findTest(t, ep, "C1")
					if c1.Outcome != audit.OutcomeAccepted {
						t.Errorf("%s: C1 (postmaster@%s) = %s %s, want accepted", w.tls, inst.Domain, c1.Outcome, replyString(c1.Reply))
					}
					if w.want.open {
						checkOpen(t, ep, w.want)
						open = true
					} else {
						checkClosed(t, ep, w.want)
					}
					for _, id := range ep.Triggers {
						triggers = append(triggers, fmt.Sprintf("%s %s/%s %s", ep.MXHost, net.JoinHostPort(ep.Address, fmt.Sprint(ep.Port)), ep.TLS, id))
					}
				}
				wantVerdict := audit.VerdictClosed
				if open {
					wantVerdict = audit.VerdictOpen
				}
				if tg.Verdict != wantVerdict {
					t.Errorf("target verdict %s (%s), want %s", tg.Verdict, tg.Reason, wantVerdict)
				}
				if !slices.Equal(tg.Triggers, triggers) {
					t.Errorf("target triggers %q, want %q", tg.Triggers, triggers)
				}

				// The prober was outside the trusted network, except
				// where the mistake is a trusted network that is too wide.
				if len(res.Vantage.SourceAddrs) == 0 {
					t.Error("no probe source address recorded")
				}
				for _, src := range res.Vantage.SourceAddrs {
					a, err := netip.ParseAddr(src)
					if err != nil {
						t.Errorf("probe source %q: %v", src, err)
					} else if inside := inst.Trusted.Contains(a); inside != (mode == mtatest.OpenMynetworks) {
						t.Errorf("probe source %s inside the trusted network %s: %v", src, inst.Trusted, inside)
					}
				}
				if n := len(sink.Messages()); n != 0 {
					t.Errorf("the sink received %d messages at depth data; the probe must never complete one", n)
				}
			})
		}
	}
}

func checkClosed(t *testing.T, ep audit.EndpointResult, want epWant) {
	t.Helper()
	if ep.Verdict != audit.VerdictClosed || len(ep.Triggers) != 0 {
		t.Errorf("%s: verdict %s (%s), triggers %v; want closed", ep.TLS, ep.Verdict, ep.Reason, ep.Triggers)
	}
	s2 := findTest(t, ep, "S2")
	if s2.Outcome != audit.OutcomeDenied || s2.Reply == nil || s2.Reply.Code != want.denyCode ||
		(want.denyEnhanced != "" && s2.Reply.Enhanced != want.denyEnhanced) {
		t.Errorf("%s: S2 = %s %s, want denied with %d %s", ep.TLS, s2.Outcome, replyString(s2.Reply), want.denyCode, want.denyEnhanced)
	}
	for _, ts := range ep.Tests {
		switch ts.Outcome {
		case audit.OutcomeOpenConfirmed, audit.OutcomeOpenLikely, audit.OutcomeOpenPotential, audit.OutcomeSubmitted:
			t.Errorf("%s: %s on a closed MTA: %s %s", ep.TLS, ts.ID, ts.Outcome, replyString(ts.Reply))
		}
	}
}

func checkOpen(t *testing.T, ep audit.EndpointResult, want epWant) {
	t.Helper()
	if ep.Verdict != audit.VerdictOpen {
		t.Errorf("%s: verdict %s (%s); want open", ep.TLS, ep.Verdict, ep.Reason)
	}
	if ep.Confirmation != audit.ConfirmLikely {
		t.Errorf("%s: confirmation %q, want %q (DATA got 354)", ep.TLS, ep.Confirmation, audit.ConfirmLikely)
	}
	for _, id := range want.must {
		if !slices.Contains(ep.Triggers, id) {
			t.Errorf("%s: %s is not among the triggers %v", ep.TLS, id, ep.Triggers)
		}
	}
	for _, id := range want.mustNot {
		if slices.Contains(ep.Triggers, id) {
			t.Errorf("%s: %s is a trigger, but this MTA refuses it: %v", ep.TLS, id, ep.Triggers)
		}
	}
	for _, id := range ep.Triggers {
		ts := findTest(t, ep, id)
		if ts.Outcome != audit.OutcomeOpenLikely {
			t.Errorf("%s: trigger %s has outcome %s", ep.TLS, id, ts.Outcome)
		}
		checkTranscript(t, ep, ts)
	}
}

// checkTranscript checks that the test's connection transcript shows the
// RCPT for the test and the 354 that made it a trigger.
func checkTranscript(t *testing.T, ep audit.EndpointResult, ts audit.TestResult) {
	t.Helper()
	if ts.Conn < 0 || ts.Conn >= len(ep.Transcripts) {
		t.Errorf("%s: conn %d outside %d transcripts", ts.ID, ts.Conn, len(ep.Transcripts))
		return
	}
	tr := ep.Transcripts[ts.Conn]
	rcpt := -1
	for i, l := range tr.Lines {
		if l.Dir == "C" && strings.EqualFold(l.Text, "RCPT TO:"+ts.RcptTo) {
			rcpt = i
		}
		if rcpt >= 0 && l.Dir == "S" && strings.HasPrefix(l.Text, "354") {
			return
		}
	}
	t.Errorf("%s: transcript %d has no RCPT TO:%s followed by 354", ts.ID, ts.Conn, ts.RcptTo)
}

func findTest(t *testing.T, ep audit.EndpointResult, id string) audit.TestResult {
	t.Helper()
	for _, ts := range ep.Tests {
		if ts.ID == id {
			return ts
		}
	}
	t.Fatalf("no test %s in the result", id)
	return audit.TestResult{}
}

// TestIntegrationDeliver runs depth deliver against real open MTAs: the
// relayed test message must really arrive at the sink, for the external
// recipient, carrying the test's token and the MTA's Received header.
func TestIntegrationDeliver(t *testing.T) {
	for _, c := range []struct {
		kind mtatest.Kind
		mode mtatest.Mode
	}{{mtatest.Postfix, mtatest.OpenClientAccess}, {mtatest.Exim, mtatest.OpenRelayToDomains}, {mtatest.OpenSMTPD, mtatest.OpenFromAny}} {
		t.Run(fmt.Sprintf("%s/%s", c.kind, c.mode), func(t *testing.T) {
			t.Parallel()
			sink := mtatest.StartSink(t)
			inst := mtatest.StartT(t, mtatest.Config{Kind: c.kind, Mode: c.mode, RelayHost: sink.Addr()})
			res := auditInstance(t, inst, func(o *audit.Options) { o.Depth = audit.DepthDeliver })
			ep := res.Targets[0].Endpoints[0]
			if res.Targets[0].Verdict != audit.VerdictOpen || len(ep.Triggers) == 0 {
				t.Fatalf("verdict %s, triggers %v; want open", res.Targets[0].Verdict, ep.Triggers)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			submitted := 0
			for _, id := range ep.Triggers {
				ts := findTest(t, ep, id)
				if ts.Outcome == audit.OutcomeOpenPotential {
					// Sent and accepted at RCPT after the endpoint was
					// found open; its DATA was not tried (issue 13 item 5).
					continue
				}
				submitted++
				if ts.Outcome != audit.OutcomeSubmitted || ts.Token == "" {
					t.Errorf("%s: outcome %s, token %q; want submitted with a token", id, ts.Outcome, ts.Token)
					continue
				}
				m, err := sink.Wait(ctx, func(m mtatest.Message) bool { return strings.Contains(string(m.Data), ts.Token) })
				if err != nil {
					t.Errorf("%s: the relayed message with token %s never reached the sink: %v", id, ts.Token, err)
					continue
				}
				if !slices.Equal(m.RcptTo, []string{"victim@victim.test"}) {
					t.Errorf("%s: delivered to %q, want [victim@victim.test]", id, m.RcptTo)
				}
				if rcv := m.Header("Received"); len(rcv) == 0 || !strings.Contains(rcv[0], "by "+inst.Hostname) {
					t.Errorf("%s: top Received %q, want one added by %s", id, rcv, inst.Hostname)
				}
			}
			if submitted == 0 {
				t.Errorf("no trigger submitted a message: %v", ep.Triggers)
			}
		})
	}
}

// startCatcher starts the catch-mode receiver for catch.test on a free
// loopback port.
func startCatcher(t *testing.T) (*audit.CatchServer, netip.AddrPort) {
	t.Helper()
	c, err := audit.NewCatcher(audit.CatcherConfig{Domain: "catch.test", Listen: "127.0.0.1:0", Hostname: "catcher.catch.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	addr, err := netip.ParseAddrPort(c.Addr())
	if err != nil {
		t.Fatalf("catcher address %q: %v", c.Addr(), err)
	}
	return c, addr
}

// TestIntegrationCatch is issue 3 against a real Postfix: an open relay
// whose outbound mail goes to the catcher's address must come out
// OPEN-CONFIRMED, with the Received chain that shows Postfix relayed the
// message; a closed Postfix in catch mode stays closed and the catcher
// receives nothing.
func TestIntegrationCatch(t *testing.T) {
	t.Run("open", func(t *testing.T) {
		t.Parallel()
		catcher, addr := startCatcher(t)
		inst := mtatest.StartT(t, mtatest.Config{Kind: mtatest.Postfix, Mode: mtatest.OpenClientAccess, RelayHost: addr})
		res := auditInstance(t, inst, func(o *audit.Options) { o.Catcher, o.To = catcher, "" })
		tg := res.Targets[0]
		ep := tg.Endpoints[0]
		if tg.Verdict != audit.VerdictOpen || ep.Confirmation != audit.ConfirmConfirmed {
			t.Fatalf("verdict %s, confirmation %q; want open, confirmed", tg.Verdict, ep.Confirmation)
		}
		if res.Options.Depth != "catch" {
			t.Errorf("depth recorded as %q, want catch", res.Options.Depth)
		}
		confirmed := 0
		for _, id := range ep.Triggers {
			ts := findTest(t, ep, id)
			if ts.Outcome != audit.OutcomeOpenConfirmed {
				continue
			}
			confirmed++
			ev := ts.Catch
			if ev == nil || !ev.Arrived {
				t.Errorf("%s: open-confirmed without catch evidence: %+v", id, ev)
				continue
			}
			// Whatever form the test's RCPT had (percent hack, source
			// route, bang path...), Postfix delivered to the token's
			// plain address at the catch domain.
			want := strings.ToLower(ts.Token) + "@catch.test"
			if !strings.Contains(strings.ToLower(ts.RcptTo), strings.ToLower(ts.Token)) ||
				len(ev.RcptTo) != 1 || strings.ToLower(strings.Trim(ev.RcptTo[0], "<>")) != want {
				t.Errorf("%s: RCPT %s arrived for %q, want [%s]", id, ts.RcptTo, ev.RcptTo, want)
			}
			// Postfix's smtp client delivered it: its connection came
			// from the prober's host, and its Received header is on
			// top, naming the prober's HELO as where it came from.
			if len(ev.Received) == 0 {
				t.Errorf("%s: no Received chain", id)
				continue
			}
			top := ev.Received[0]
			if confirmed == 1 {
				t.Logf("%s: catcher saw HELO %q from %s; Received: %q", id, ev.Helo, ev.RemoteAddr, ev.Received)
			}
			if !strings.Contains(top, "by "+inst.Hostname) || !strings.Contains(top, "prober.probe.test") {
				t.Errorf("%s: top Received %q, want one by %s from prober.probe.test", id, top, inst.Hostname)
			}
			if !strings.Contains(ev.Helo, inst.Hostname) {
				t.Errorf("%s: catcher saw HELO %q, want Postfix's %s", id, ev.Helo, inst.Hostname)
			}
		}
		if confirmed == 0 {
			t.Errorf("no trigger is open-confirmed: %v", ep.Triggers)
		}
	})
	// Accept-then-bounce: at depth data it looks exactly like an open
	// relay (354 for everything), the false positive that catch mode
	// exists for. With the catcher, the bounces Postfix sends come back
	// and the tests whose bounce address is the catcher's are "bounced",
	// and nothing is open.
	t.Run("bounce", func(t *testing.T) {
		t.Parallel()
		catcher, addr := startCatcher(t)
		inst := mtatest.StartT(t, mtatest.Config{Kind: mtatest.Postfix, Mode: mtatest.BounceAfterAccept, RelayHost: addr})
		data := auditInstance(t, inst, nil)
		if ep := data.Targets[0].Endpoints[0]; ep.Verdict != audit.VerdictOpen || ep.Confirmation != audit.ConfirmLikely {
			t.Errorf("depth data: %s %s, want open likely (354 is all it can see)", ep.Verdict, ep.Confirmation)
		}
		res := auditInstance(t, inst, func(o *audit.Options) { o.Catcher, o.To, o.CatchWait = catcher, "", 10*time.Second })
		tg := res.Targets[0]
		ep := tg.Endpoints[0]
		if tg.Verdict == audit.VerdictOpen || ep.Verdict == audit.VerdictOpen || len(ep.Triggers) != 0 {
			t.Errorf("catch: verdict %s (%s), triggers %v; an accept-then-bounce server is not open", ep.Verdict, ep.Reason, ep.Triggers)
		}
		bounced := 0
		for _, ts := range ep.Tests {
			if ts.Token == "" || !strings.Contains(strings.ToLower(ts.MailFrom), "bounce-"+strings.ToLower(ts.Token)+"@catch.test") {
				continue
			}
			// Every test whose bounce address is the catcher's must
			// see its bounce.
			if ts.Outcome != audit.OutcomeBounced || ts.Catch == nil || !ts.Catch.Bounce || ts.Catch.Arrived {
				t.Errorf("%s: outcome %s, catch %+v; want bounced", ts.ID, ts.Outcome, ts.Catch)
				continue
			}
			bounced++
		}
		if bounced == 0 {
			t.Error("no test used the catcher's bounce address")
		}
		t.Logf("catch mode: %s (%s); %d tests bounced", ep.Verdict, ep.Reason, bounced)
		if st := catcher.Stats(); st.Bounces < bounced {
			t.Errorf("catcher counted %d bounces, tests %d", st.Bounces, bounced)
		}
	})
	t.Run("closed", func(t *testing.T) {
		t.Parallel()
		catcher, addr := startCatcher(t)
		inst := mtatest.StartT(t, mtatest.Config{Kind: mtatest.Postfix, Mode: mtatest.Closed, RelayHost: addr})
		res := auditInstance(t, inst, func(o *audit.Options) { o.Catcher, o.To = catcher, "" })
		if v := res.Targets[0].Verdict; v != audit.VerdictClosed {
			t.Errorf("verdict %s, want closed", v)
		}
		if st := catcher.Stats(); st.Messages != 0 {
			t.Errorf("the catcher received %d messages from a closed Postfix", st.Messages)
		}
	})
}

// TestIntegrationIPv6Only is the relay that is open only over IPv6
// (docs/relay-probes.md §6: docker-mailserver#1405, mailcow#5242): one MX name
// whose A record is a closed Postfix and whose AAAA record (::1, same
// port) is an open one. The audit must probe both addresses, report the
// IPv4 endpoint closed and the IPv6 one open, and call the domain open;
// the sender literal test must use the RFC 5321 §4.1.3 IPv6 form, which
// the real Postfix parses.
func TestIntegrationIPv6Only(t *testing.T) {
	t.Parallel()
	v4, v6, err := mtatest.DualStack()
	if err != nil {
		t.Fatal(err)
	}
	sink := mtatest.StartSink(t)
	closed := mtatest.StartT(t, mtatest.Config{Kind: mtatest.Postfix, Mode: mtatest.Closed, RelayHost: sink.Addr(), Listen: v4})
	open := mtatest.StartT(t, mtatest.Config{Kind: mtatest.Postfix, Mode: mtatest.OpenClientAccess, RelayHost: sink.Addr(), Listen: v6})
	res := auditInstance(t, closed, func(o *audit.Options) {
		o.AllTests = true
		o.Resolver = &audit.MockResolver{
			MX:    map[string][]string{closed.Domain: {"mx." + closed.Domain}},
			Addrs: map[string][]netip.Addr{"mx." + closed.Domain: {v4.Addr(), v6.Addr()}},
		}
	})
	tg := res.Targets[0]
	if tg.Verdict != audit.VerdictOpen {
		t.Errorf("domain verdict %s (%s), want open", tg.Verdict, tg.Reason)
	}
	byAddr := map[string]audit.EndpointResult{}
	for _, ep := range tg.Endpoints {
		byAddr[ep.Address] = ep
	}
	if len(tg.Endpoints) != 2 {
		t.Fatalf("%d endpoints, want 2 (A and AAAA)", len(tg.Endpoints))
	}
	ep4, ok4 := byAddr[v4.Addr().String()]
	ep6, ok6 := byAddr[v6.Addr().String()]
	if !ok4 || !ok6 {
		t.Fatalf("endpoints %s and %s, want %s and %s", tg.Endpoints[0].Address, tg.Endpoints[1].Address, v4.Addr(), v6.Addr())
	}
	if ep4.Verdict != audit.VerdictClosed || len(ep4.Triggers) != 0 {
		t.Errorf("IPv4 endpoint %s (%s) triggers %v, want closed", ep4.Verdict, ep4.Reason, ep4.Triggers)
	}
	checkOpen(t, ep6, epWant{open: true, must: []string{"S1", "S2", "S4", "R13", "R23"}})
	for _, id := range ep6.Triggers {
		want := fmt.Sprintf("%s %s/%s %s", ep6.MXHost, net.JoinHostPort(ep6.Address, fmt.Sprint(ep6.Port)), ep6.TLS, id)
		if !slices.Contains(tg.Triggers, want) {
			t.Errorf("domain triggers %q lack %q", tg.Triggers, want)
		}
	}
	if s4 := findTest(t, ep6, "S4"); !strings.Contains(s4.MailFrom, "@[IPv6:::1]>") {
		t.Errorf("S4 sender %s, want an [IPv6:::1] literal", s4.MailFrom)
	}
	if open.Addr != v6 {
		t.Errorf("open instance on %s, want %s", open.Addr, v6)
	}
}

// A stock Postfix sleeps a second before every reply after 10 refusals
// and hangs up after 20. One batch of the whole matrix runs into that;
// relaylock cuts the batch when the replies slow down and spreads the
// rest over connections of at most TestsPerConn tests, so every test is
// decided and the server is still found closed.
func TestIntegrationPostfixStockErrorLimits(t *testing.T) {
	for _, mode := range []mtatest.Mode{mtatest.Closed, mtatest.OpenClientAccess} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			sink := mtatest.StartSink(t)
			inst := mtatest.StartT(t, mtatest.Config{Kind: mtatest.Postfix, Mode: mode, RelayHost: sink.Addr(), StockErrorLimits: true})
			start := time.Now()
			res := auditInstance(t, inst, func(o *audit.Options) { o.AllTests = true })
			ep := res.Targets[0].Endpoints[0]
			t.Logf("%s: %s in %s over %d connections, %d round trips", mode, ep.Verdict, time.Since(start).Round(time.Millisecond), ep.Connections, ep.RoundTrips)
			want := audit.VerdictClosed
			if mode != mtatest.Closed {
				want = audit.VerdictOpen
			}
			if ep.Verdict != want {
				t.Fatalf("verdict %s, want %s", ep.Verdict, want)
			}
			for _, tr := range ep.Tests {
				if tr.Outcome == audit.OutcomeInconclusive {
					t.Errorf("%s inconclusive: %s", tr.ID, tr.Reason)
				}
			}
			if mode != mtatest.Closed {
				return
			}
			cut := false
			for _, l := range ep.Transcripts[0].Lines {
				cut = cut || strings.Contains(l.Text, "the unanswered tests go to other connections")
			}
			if !cut || ep.Connections < 3 || ep.RoundTrips > 4*ep.Connections {
				t.Errorf("cut %v, %d connections, %d round trips: want the slowed batch cut and spread at 4 round trips each", cut, ep.Connections, ep.RoundTrips)
			}
		})
	}
}

// Test 41 against a real Exim that offers AUTH PLAIN and LOGIN: the made-up
// accounts get a real 535 through the whole exchange (LOGIN's prompts
// included), relaying after them is refused, the mechanisms Exim does not
// offer are skipped, and the server is closed.
func TestIntegrationAuthTestsExim(t *testing.T) {
	sink := mtatest.StartSink(t)
	inst := mtatest.StartT(t, mtatest.Config{Kind: mtatest.Exim, Mode: mtatest.Closed, RelayHost: sink.Addr(), Auth: true})
	res := auditInstance(t, inst, func(o *audit.Options) { o.AuthTests = true })
	ep := res.Targets[0].Endpoints[0]
	if ep.Verdict != audit.VerdictClosed {
		t.Fatalf("verdict %s, triggers %v", ep.Verdict, ep.Triggers)
	}
	got := map[string]string{}
	for _, tr := range ep.Tests {
		if !strings.HasPrefix(tr.ID, "A41") {
			continue
		}
		code := 0
		if tr.AuthReply != nil {
			code = tr.AuthReply.Code
		}
		got[tr.ID] = fmt.Sprintf("%s/%d", tr.Outcome, code)
	}
	want := map[string]string{
		"A41a": "skipped/0", "A41b": "denied/535", "A41c": "denied/535", "A41d": "skipped/0",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("A41 outcomes %v, want %v", got, want)
	}
}
