package audit_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/audit/mtatest"
)

// TestIntegrationAcceptAnyLocal: a real Postfix and a real Exim that
// accept any local part at every one of their own names (Postfix
// local_recipient_maps empty, a catch-all as IIS SMTP and luser_relay
// servers have; an Exim accept-all router) and refuses to
// relay is closed whether it is audited by domain, by host name or by
// address (issue 13 item 1). Before, by address or host name, the forms
// at its address literal or banner host read as relaying.
func TestIntegrationAcceptAnyLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("real MTAs")
	}
	for _, kind := range []mtatest.Kind{mtatest.Postfix, mtatest.Exim} {
		sink := mtatest.StartSink(t)
		mode := mtatest.ClosedReject
		if kind == mtatest.Exim {
			mode = mtatest.Closed
		}
		inst := mtatest.StartT(t, mtatest.Config{Kind: kind, Mode: mode, RelayHost: sink.Addr(), AcceptAnyLocal: true})
		mx := "mx." + inst.Domain
		for _, tc := range []struct {
			name, target string
			kind         string
		}{
			{"domain", inst.Domain, "domain"},
			{"host name", mx, "host"},
			{"address", inst.Addr.Addr().String(), "address"},
		} {
			t.Run(string(kind)+"/"+tc.name, func(t *testing.T) {
				res := auditInstance(t, inst, func(o *audit.Options) {
					o.Targets = []string{tc.target}
					o.Resolver = &audit.MockResolver{
						MX:    map[string][]string{inst.Domain: {mx}},
						Addrs: map[string][]netip.Addr{mx: {inst.Addr.Addr()}},
					}
				})
				tg := res.Targets[0]
				if tg.Kind != tc.kind {
					t.Fatalf("target kind %s, want %s", tg.Kind, tc.kind)
				}
				ep := tg.Endpoints[0]
				if tg.Verdict != audit.VerdictClosed {
					t.Fatalf("%s: verdict %s (%s), want closed", tc.target, tg.Verdict, ep.Reason)
				}
				// The server does accept a random local part at its literal:
				// the control that makes the difference ran and was accepted.
				// (Exim refuses address literals unless
				// allow_domain_literals is set.)
				if c := findTest(t, ep, "C2I"); kind == mtatest.Postfix && c.Outcome != audit.OutcomeAccepted {
					t.Errorf("C2I %s (%s), want accepted: the server accepts any local part at [%s]", c.Outcome, c.Reason, inst.Addr.Addr())
				}
				if !ep.AcceptAll {
					t.Error("accept_all not set on a server that accepts any local part")
				}
			})
		}
	}
}

// TestIntegrationCatchAcceptEverythingDeliverNothing: in catch mode a
// real Postfix that accepts every recipient and discards the messages is
// closed, with an accept-all finding naming the wait, not inconclusive
// (issue 13 item 3): catch mode is never less decisive than the default.
func TestIntegrationCatchAcceptEverythingDeliverNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("real MTAs")
	}
	catcher, addr := startCatcher(t)
	inst := mtatest.StartT(t, mtatest.Config{Kind: mtatest.Postfix, Mode: mtatest.OpenClientAccess, RelayHost: addr, DiscardOutbound: true})
	start := time.Now()
	res := auditInstance(t, inst, func(o *audit.Options) { o.Catcher, o.To, o.CatchWait = catcher, "", 3*time.Second })
	tg := res.Targets[0]
	ep := tg.Endpoints[0]
	if tg.Verdict != audit.VerdictClosed {
		t.Fatalf("verdict %s (%s), want closed", tg.Verdict, ep.Reason)
	}
	if len(ep.Findings) == 0 || !strings.Contains(ep.Findings[0], "accept-all") || !strings.Contains(ep.Findings[0], "3s") {
		t.Errorf("findings %q; want an accept-all finding naming the 3s wait", ep.Findings)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("took %s", d)
	}
}
