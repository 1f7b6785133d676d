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

// expectation is what the audit of one configuration must find, with
// AllTests set so that every test runs.
type expectation struct {
	open bool
	// Closed: the reply to S2 (plain relay), code and enhanced code.
	denyCode     int
	denyEnhanced string
	// Open: tests that must be triggers, and tests that must not.
	must, mustNot []string
}

var expectations = map[mtatest.Kind]map[mtatest.Mode]expectation{
	mtatest.Postfix: {
		// defer_unauth_destination: a 4xx that is a refusal, not
		// greylisting (relay-probes.md §5).
		mtatest.Closed:       {denyCode: 454, denyEnhanced: "4.7.1"},
		mtatest.ClosedReject: {denyCode: 554, denyEnhanced: "5.7.1"},
		mtatest.OpenMynetworks: {open: true,
			must: []string{"S1", "S2", "S5", "R15", "R23", "R27"}},
		mtatest.OpenClientAccess: {open: true,
			must: []string{"S1", "S2", "S5", "R15", "R23", "R27"}},
		// Only the null sender relays.
		mtatest.OpenNullSender: {open: true,
			must: []string{"S1"}, mustNot: []string{"S2", "S3", "S5", "S6", "S10", "R15", "R15b"}},
		// Senders in (or qualified into) target.test relay: the local
		// and postmaster senders, the banner host and random
		// subdomain (parent_domain_matches_subdomains), the
		// unqualified sender (myorigin), and every recipient form
		// sent with a local sender.
		mtatest.OpenLocalSender: {open: true,
			must:    []string{"S3", "S5", "S6", "S10", "S12", "R15b", "R23b"},
			mustNot: []string{"S2", "S4", "S8", "S9", "R15", "R23"}},
	},
	mtatest.Exim: {
		mtatest.Closed: {denyCode: 550},
		// Exim refuses "%", "!" and "@" in local parts before any
		// relay rule, so only the sender tests and source routes relay.
		mtatest.OpenMynetworks: {open: true,
			must: []string{"S1", "S2", "S5", "S6"}, mustNot: []string{"R15", "R15b", "R27b"}},
		mtatest.OpenRelayToDomains: {open: true,
			must: []string{"S1", "S2", "S5", "S6"}, mustNot: []string{"R15", "R15b", "R27b"}},
	},
}

// TestIntegrationVerdicts audits every configuration of every real MTA:
// closed ones must be closed (postmaster accepted, every relay attempt
// refused), open ones open with the tests that really relay as triggers,
// each with the transcript that shows it. At the default depth (data) the
// probe never sends a message, so nothing may reach the sink.
func TestIntegrationVerdicts(t *testing.T) {
	for _, kind := range mtatest.Kinds {
		for _, mode := range mtatest.Modes(kind) {
			t.Run(fmt.Sprintf("%s/%s", kind, mode), func(t *testing.T) {
				t.Parallel()
				want, ok := expectations[kind][mode]
				if !ok {
					t.Fatalf("no expectation for %s %s", kind, mode)
				}
				sink := mtatest.StartSink(t)
				inst := mtatest.StartT(t, mtatest.Config{Kind: kind, Mode: mode, RelayHost: sink.Addr()})
				res := auditInstance(t, inst, func(o *audit.Options) { o.AllTests = true })
				tg := res.Targets[0]
				ep := tg.Endpoints[0]
				if len(tg.Endpoints) != 1 || ep.Address != inst.Addr.Addr().String() || ep.Port != int(inst.Addr.Port()) {
					t.Fatalf("endpoints = %d, first %s:%d; want only %s", len(tg.Endpoints), ep.Address, ep.Port, inst.Addr)
				}
				if !strings.Contains(ep.Banner, inst.Hostname) || ep.BannerHost != inst.Hostname {
					t.Errorf("banner %q, banner host %q; want %s", ep.Banner, ep.BannerHost, inst.Hostname)
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
				c1 := findTest(t, ep, "C1")
				if c1.Outcome != audit.OutcomeAccepted {
					t.Errorf("C1 (postmaster@%s) = %s %s, want accepted", inst.Domain, c1.Outcome, replyString(c1.Reply))
				}
				if want.open {
					checkOpen(t, tg, ep, want)
				} else {
					checkClosed(t, tg, ep, want)
				}
				if n := len(sink.Messages()); n != 0 {
					t.Errorf("the sink received %d messages at depth data; the probe must never complete one", n)
				}
			})
		}
	}
}

func checkClosed(t *testing.T, tg audit.TargetResult, ep audit.EndpointResult, want expectation) {
	t.Helper()
	if tg.Verdict != audit.VerdictClosed || ep.Verdict != audit.VerdictClosed {
		t.Errorf("verdict target %s, endpoint %s (%s); want closed", tg.Verdict, ep.Verdict, ep.Reason)
	}
	if len(tg.Triggers) != 0 || len(ep.Triggers) != 0 {
		t.Errorf("triggers %v %v on a closed MTA", tg.Triggers, ep.Triggers)
	}
	s2 := findTest(t, ep, "S2")
	if s2.Outcome != audit.OutcomeDenied || s2.Reply == nil || s2.Reply.Code != want.denyCode ||
		(want.denyEnhanced != "" && s2.Reply.Enhanced != want.denyEnhanced) {
		t.Errorf("S2 = %s %s, want denied with %d %s", s2.Outcome, replyString(s2.Reply), want.denyCode, want.denyEnhanced)
	}
	for _, ts := range ep.Tests {
		switch ts.Outcome {
		case audit.OutcomeOpenConfirmed, audit.OutcomeOpenLikely, audit.OutcomeOpenPotential, audit.OutcomeSubmitted:
			t.Errorf("%s on a closed MTA: %s %s", ts.ID, ts.Outcome, replyString(ts.Reply))
		}
	}
}

func checkOpen(t *testing.T, tg audit.TargetResult, ep audit.EndpointResult, want expectation) {
	t.Helper()
	if tg.Verdict != audit.VerdictOpen || ep.Verdict != audit.VerdictOpen {
		t.Errorf("verdict target %s, endpoint %s (%s); want open", tg.Verdict, ep.Verdict, ep.Reason)
	}
	if ep.Confirmation != audit.ConfirmLikely {
		t.Errorf("confirmation %q, want %q (DATA got 354)", ep.Confirmation, audit.ConfirmLikely)
	}
	for _, id := range want.must {
		if !slices.Contains(ep.Triggers, id) {
			t.Errorf("%s is not among the triggers %v", id, ep.Triggers)
		}
	}
	for _, id := range want.mustNot {
		if slices.Contains(ep.Triggers, id) {
			t.Errorf("%s is a trigger, but this MTA refuses it: %v", id, ep.Triggers)
		}
	}
	if len(tg.Triggers) != len(ep.Triggers) {
		t.Errorf("target lists %d triggers, endpoint %d", len(tg.Triggers), len(ep.Triggers))
	}
	for _, id := range ep.Triggers {
		ts := findTest(t, ep, id)
		if ts.Outcome != audit.OutcomeOpenLikely {
			t.Errorf("trigger %s has outcome %s", id, ts.Outcome)
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
	}{{mtatest.Postfix, mtatest.OpenClientAccess}, {mtatest.Exim, mtatest.OpenRelayToDomains}} {
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
			for _, id := range ep.Triggers {
				ts := findTest(t, ep, id)
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
		})
	}
}
