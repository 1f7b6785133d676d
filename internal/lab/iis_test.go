package lab

import (
	"context"
	"net/netip"
	"testing"

	"github.com/relaylock/relaylock/remediate"
)

var (
	labStranger = netip.MustParseAddr("198.51.100.7")
	labLoopback = netip.MustParseAddr("127.0.0.1")
	labDenied   = netip.MustParseAddr("192.0.2.66")
)

func TestIISRelayAllowedByScenario(t *testing.T) {
	type probe struct {
		client netip.Addr
		auth   bool
		rcpt   string
		want   bool
	}
	tests := []struct {
		name string
		s    IISScenario
		p    []probe
	}{
		{"all except empty", IISAllExceptEmpty, []probe{{labStranger, false, "x.example", true}, {labLoopback, false, "x.example", true}}},
		{"grant everyone", IISGrantEveryone, []probe{{labStranger, false, "x.example", true}}},
		{"closed", IISClosed, []probe{{labStranger, false, "x.example", false}, {labLoopback, false, "x.example", true}, {labStranger, true, "x.example", true}}},
		{"unset", IISUnset, []probe{{labStranger, false, "x.example", false}, {labLoopback, false, "x.example", false}, {labStranger, true, "x.example", true}}},
		{"deny list", IISDenyList, []probe{{labStranger, false, "x.example", true}, {labDenied, false, "x.example", false}}},
		{"wildcard domain", IISRemoteDomainWildcard, []probe{{labStranger, false, "x.example", true}}},
		{"inherited open", IISInheritedOpen, []probe{{labStranger, false, "x.example", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewIIS(tt.s)
			for _, p := range tt.p {
				if got := h.RelayAllowed(p.client, p.auth, p.rcpt); got != p.want {
					t.Errorf("RelayAllowed(%s, auth=%v, %s) = %v, want %v", p.client, p.auth, p.rcpt, got, p.want)
				}
			}
		})
	}
}

func TestIISRelayDomainMatching(t *testing.T) {
	h := NewIIS(IISClosed)
	st := h.State()
	st.Domains = append(st.Domains, remediate.IISDomain{Name: "SmtpSvc/1/Domain/*.partner.example", RouteAction: routeActionRelay, RelayIpList: remediate.RelayListBlob{Null: true}})
	h.SetState(st)
	for rcpt, want := range map[string]bool{"mx.partner.example": true, "PARTNER.example": false, "partner.example.evil": false, "other.example": false} {
		if got := h.RelayAllowed(labStranger, false, rcpt); got != want {
			t.Errorf("%s: %v", rcpt, got)
		}
	}
	// A stopped service relays nothing.
	st = h.State()
	st.Service.State = "Stopped"
	h.SetState(st)
	if h.RelayAllowed(labLoopback, true, "x.example") {
		t.Error("stopped SMTPSVC relays")
	}
}

func TestIISHostAnswersLikeItsScripts(t *testing.T) {
	ctx := context.Background()
	h := NewIIS(IISAllExceptEmpty)
	r := &DirectRunner{Host: h}
	info, _, err := remediate.Detect(ctx, r)
	if err != nil || info.Platform != remediate.PlatformIIS {
		t.Fatalf("detect: %s %v", info.Platform, err)
	}
	run, err := r.Run(ctx, "exchange-read", nil)
	if err != nil || run.ExitCode == 0 {
		t.Fatalf("an IIS host ran exchange-read: %v", err)
	}
	run, err = r.Run(ctx, remediate.ScriptIISWrite, map[string]string{"server": "smtpsvc/1", "relayiplist": "NULL", "relayforauth": "0"})
	if err != nil || run.ExitCode != 0 {
		t.Fatalf("case-insensitive server name (PowerShell -eq): %v %+v", err, run.Errors)
	}
	if st := h.State(); !st.Servers[0].RelayIpList.Null || st.Servers[0].RelayForAuth != 0 {
		t.Fatalf("write not applied: %+v", st.Servers[0])
	}
	if ds := h.LocalDomains(); len(ds) != 2 || ds[0] != "corp.example" || ds[1] != "smtp01.corp.example" {
		t.Fatalf("local domains %v", ds)
	}
	if ds := NewExchange2003(Ex2003Open).LocalDomains(); len(ds) != 1 || ds[0] != LabExchangeDomain {
		t.Fatalf("Exchange 2003 local domains %v", ds)
	}
	nw := NewIIS(IISNoWebWMI)
	run, err = (&DirectRunner{Host: nw}).Run(ctx, remediate.ScriptIISRead, nil)
	if err != nil || run.ExitCode != 3 || len(run.Errors) == 0 {
		t.Fatalf("no Web-WMI: %v %+v", err, run)
	}
	if err := remediate.CheckRun("smtp01", run); err == nil {
		t.Fatal("CheckRun accepted the failed run")
	}
	info = nw.HostInfo()
	for _, f := range info.Features {
		if f.Name == "Web-WMI" && f.Installed {
			t.Fatal("IISNoWebWMI reports Web-WMI installed")
		}
	}
}
