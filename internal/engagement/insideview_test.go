package engagement

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
)

func TestInsideView(t *testing.T) {
	ep := func(addr string, v audit.Verdict, locals ...string) audit.EndpointResult {
		e := audit.EndpointResult{Address: addr, Port: 25, Verdict: v}
		for _, l := range locals {
			e.Transcripts = append(e.Transcripts, audit.Transcript{Local: l})
		}
		return e
	}
	result := func(v audit.Verdict, eps ...audit.EndpointResult) *audit.Result {
		return &audit.Result{Verdict: v, Targets: []audit.TargetResult{{Endpoints: eps}}}
	}
	allow := func(p remediate.Platform, noLoopback bool, entries ...string) []allowEntry {
		var req remediate.Request
		req.NoLoopback = noLoopback
		for _, e := range entries {
			r, err := remediate.ParseAddrRange(e)
			if err != nil {
				t.Fatal(err)
			}
			req.Allow = append(req.Allow, r)
		}
		return allowedList(req, p)
	}
	tests := []struct {
		name       string
		r          *audit.Result
		allow      []allowEntry
		probers    []string // InsideView[].Prober
		loopback   bool     // the first entry is the default loopback
		insideOnly bool
	}{
		{"IIS loopback by default", result(audit.VerdictOpen, ep("127.0.0.1", audit.VerdictOpen, "127.0.0.1:40000")),
			allow(remediate.PlatformIIS, false, "192.0.2.10"), []string{"127.0.0.1"}, true, true},
		{"--no-loopback", result(audit.VerdictOpen, ep("127.0.0.1", audit.VerdictOpen, "127.0.0.1:40000")),
			allow(remediate.PlatformIIS, true, "192.0.2.10"), nil, false, false},
		{"Exchange 2016 adds no loopback", result(audit.VerdictOpen, ep("127.0.0.1", audit.VerdictOpen, "127.0.0.1:40000")),
			allow(remediate.PlatformExchange, false, "192.0.2.10"), nil, false, false},
		{"prober inside an --allow range", result(audit.VerdictOpen, ep("192.0.2.1", audit.VerdictOpen, "198.51.100.7:40000")),
			allow(remediate.PlatformExchange, false, "198.51.100.0/28"), []string{"198.51.100.7"}, false, true},
		{"one connection from outside the list counts", result(audit.VerdictOpen, ep("192.0.2.1", audit.VerdictOpen, "198.51.100.7:40000", "203.0.113.9:40001")),
			allow(remediate.PlatformExchange, false, "198.51.100.0/28"), []string{"198.51.100.7"}, false, false},
		{"another endpoint open from outside", result(audit.VerdictOpen,
			ep("127.0.0.1", audit.VerdictOpen, "127.0.0.1:40000"), ep("192.0.2.1", audit.VerdictOpen, "203.0.113.9:40001")),
			allow(remediate.PlatformIIS, false), []string{"127.0.0.1"}, true, false},
		{"closed from inside stays closed", result(audit.VerdictClosed, ep("127.0.0.1", audit.VerdictClosed, "127.0.0.1:40000")),
			allow(remediate.PlatformIIS, false), []string{"127.0.0.1"}, true, false},
		{"IPv6 mapped local address", result(audit.VerdictOpen, ep("127.0.0.1", audit.VerdictOpen, "[::ffff:127.0.0.1]:40000")),
			allow(remediate.PlatformExchange2003, false), []string{"127.0.0.1"}, true, true},
		{"unreachable: no connection", result(audit.VerdictInconclusive, ep("127.0.0.1", audit.VerdictInconclusive)),
			allow(remediate.PlatformIIS, false), nil, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iv := insideView(tc.r, tc.allow)
			var probers []string
			for _, v := range iv {
				probers = append(probers, v.Prober)
				if _, err := netip.ParseAddr(v.Prober); err != nil || len(v.Endpoints) == 0 {
					t.Errorf("inside view %+v", v)
				}
			}
			if len(probers) != len(tc.probers) || (len(probers) > 0 && probers[0] != tc.probers[0]) {
				t.Fatalf("probers %q, want %q", probers, tc.probers)
			}
			if len(iv) > 0 && iv[0].Loopback != tc.loopback {
				t.Errorf("loopback %v, want %v", iv[0].Loopback, tc.loopback)
			}
			if got := openOnlyInside(tc.r, iv, tc.allow); got != tc.insideOnly {
				t.Errorf("openOnlyInside %v, want %v", got, tc.insideOnly)
			}
		})
	}
}

// The confirmation's read ends with ctx (Ctrl-C) although the terminal
// read does not: the answer is the interruption, not a refusal.
func TestConfirmInterrupted(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	var errb bytes.Buffer
	f := &fixer{e: &Env{Stderr: &errb}, in: bufio.NewReader(pr)}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	ok, err := f.confirm(ctx, &remediate.Plan{Host: "mx", Changes: make([]remediate.Change, 2)}, "")
	if ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("confirm = %v, %v; want false and context.Canceled", ok, err)
	}
	// An answer typed before the interruption is still an answer.
	f = &fixer{e: &Env{Stderr: &errb}, in: bufio.NewReader(strings.NewReader("y\n"))}
	if ok, err := f.confirm(context.Background(), &remediate.Plan{Host: "mx"}, "note"); !ok || err != nil {
		t.Fatalf("confirm y = %v, %v", ok, err)
	}
	if !strings.Contains(errb.String(), "NOTE: note\n") {
		t.Errorf("the note was not said before the question:\n%s", errb.String())
	}
}
