package main

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
)

// An IIS host that relays only for authenticated clients, with Basic
// authentication and the Guest account enabled, looks closed to the
// default matrix; --auth-tests shows that a made-up login relays (the
// failed login logs on as Guest), and inspect names the cause.
func TestAuthTestsFindGuestRelay(t *testing.T) {
	h := lab.NewIIS(lab.IISAuthGuest)
	// The scenario grants 127.0.0.1, where the prober runs here: grant a
	// documentation address instead, so the prober is a stranger.
	st := h.State()
	m, err := remediate.IPMaskFromPrefix(netip.MustParsePrefix("192.0.2.10/32"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Servers[0].RelayIpList, err = remediate.BlobOf(remediate.RelayList{Grant: []remediate.IPMask{m}, Flags: 1}); err != nil {
		t.Fatal(err)
	}
	h.SetState(st)
	lr := startLab(t, h)
	base := []string{"audit", lr.smtpTarget(), "--mail-domain", lr.lab.Domain, "--timeout", "10s", "--format", "json"}

	code, out, errOut := lr.run(labTestPassword, base...)
	if code != exitOK {
		t.Fatalf("default matrix: exit %d, want %d (closed)\n%s\n%s", code, exitOK, out, errOut)
	}

	code, out, errOut = lr.run(labTestPassword, append(base, "--auth-tests", "--all-tests")...)
	if code != exitOpen {
		t.Fatalf("--auth-tests: exit %d, want %d (open)\n%s", code, exitOpen, errOut)
	}
	var res audit.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	ep := res.Targets[0].Endpoints[0]
	for _, id := range []string{"A41b", "A41c"} {
		if !slices.Contains(ep.Triggers, id) {
			t.Errorf("triggers %v lack %s", ep.Triggers, id)
		}
	}
	for _, tr := range ep.Tests {
		if tr.ID == "A41b" && (tr.AuthReply == nil || tr.AuthReply.Code != 235) {
			t.Errorf("A41b: AUTH reply %+v, want the Guest logon's 235", tr.AuthReply)
		}
		if tr.ID == "A41a" && tr.Outcome != audit.OutcomeSkipped {
			t.Errorf("A41a (NTLM, not offered by the lab) = %s", tr.Outcome)
		}
	}
	if !strings.Contains(lr.logText(), "(authenticated)") {
		t.Errorf("the lab did not log an authenticated relay decision:\n%s", lr.logText())
	}

	// Inspect alone cannot see the Guest logon relay (a medium finding,
	// exit 0), but names it and points at --auth-tests.
	code, out, errOut = lr.run(labTestPassword, append([]string{"inspect"}, lr.winrmArgs()...)...)
	if code != exitOK || !strings.Contains(out, "Guest account") || !strings.Contains(out, "--auth-tests") {
		t.Fatalf("inspect: exit %d\n%s\n%s", code, out, errOut)
	}
}

// remediate on that host: keeping authenticated relay leaves it open to
// anyone through the Guest logon, and the re-test (which adds the A41
// tests by itself, having seen the Guest finding) says so with exit 4;
// turning authenticated relay off closes it.
func TestRemediateRetestsGuestRelay(t *testing.T) {
	for _, tc := range []struct {
		name     string
		authFlag string
		want     int
	}{
		{"authenticated relay kept: still open", "--allow-authenticated=true", exitStillOpen},
		{"authenticated relay off: closed", "--allow-authenticated=false", exitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := lab.NewIIS(lab.IISAuthGuest)
			lr := startLab(t, h)
			args := append(append([]string{"remediate", "--allow", "127.0.0.2", "--no-loopback", "--yes", "--restart", "never",
				tc.authFlag, "--backup", lr.dir + "/backup.json"}, lr.winrmArgs()...), lr.probeArgs()...)
			code, out, errOut := lr.run(labTestPassword, args...)
			if code != tc.want {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.want, out, errOut)
			}
			if tc.want == exitStillOpen {
				if !strings.Contains(errOut, "adds the bogus-AUTH tests (A41)") || !strings.Contains(out, "  A41") ||
					!regexp.MustCompile(`still relays on re-test \(A41[bc](, A41[bc])?\)`).MatchString(errOut) {
					t.Errorf("the re-test did not add or show the A41 tests:\nstdout:\n%s\nstderr:\n%s", out, errOut)
				}
			}
		})
	}
}
