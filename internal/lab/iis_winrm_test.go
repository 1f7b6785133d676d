package lab

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/remediate"
)

// ntlmRunner is relaylock's WinRM runner for lab l: HTTPS with the lab's
// CA, NTLM, as an operator runs it.
func ntlmRunner(t *testing.T, l *Lab) remediate.Runner {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, l.CACertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	r, _, err := remediate.NewWinRMRunner(remediate.WinRMConfig{Host: l.WinRMHost, Port: l.WinRMPort, HTTPS: true, CACertFile: ca,
		TLSServerName: l.TLSServerName, User: l.User, Password: l.Password, OperationTimeout: 5 * time.Second, Auth: remediate.AuthNTLM})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestIISOverWinRM drives the IIS driver through the real WinRM client
// and the lab's WS-Management face: the scripts travel as the embedded
// text, parameters as data, and a missing Web-WMI reaches the caller as
// ErrFeatureMissing through the WinRM runner's own classification.
func TestIISOverWinRM(t *testing.T) {
	runner := func(t *testing.T, h Host) remediate.Runner {
		l := startLab(t, Config{Host: h, WinRM: WSManConfig{MaxOperationTimeout: 5 * time.Second}})
		return ntlmRunner(t, l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prober := []netip.Addr{netip.MustParseAddr("127.0.0.1")}

	t.Run("remediate", func(t *testing.T) {
		h := NewIIS(IISAllExceptEmpty)
		r := runner(t, h)
		insp, err := remediate.InspectHost(ctx, r, "smtp01", prober)
		if err != nil {
			t.Fatal(err)
		}
		if insp.Platform != remediate.PlatformIIS {
			t.Fatalf("platform %s", insp.Platform)
		}
		var open bool
		for _, f := range insp.Findings {
			open = open || (f.ID == "IIS-RELAY-ALL-EXCEPT-EMPTY" && f.Explains)
		}
		if !open {
			t.Fatalf("findings %+v", insp.Findings)
		}
		allow, _ := remediate.ParseAddrRange("192.0.2.10")
		out, err := remediate.Remediate(ctx, remediate.Options{Host: "smtp01", Runner: r, Yes: true, Prober: prober,
			Request:    remediate.Request{Allow: []remediate.AddrRange{allow}, NoLoopback: true},
			BackupPath: filepath.Join(t.TempDir(), "backup.json")})
		if err != nil || out.Change.Result != "applied" {
			t.Fatalf("remediate: %v", err)
		}
		if h.RelayAllowed(netip.MustParseAddr("127.0.0.1"), false, "x.example") || !h.RelayAllowed(netip.MustParseAddr("192.0.2.10"), false, "x.example") {
			t.Fatal("relay decisions after remediate over WinRM are wrong")
		}
	})
	t.Run("no-web-wmi", func(t *testing.T) {
		r := runner(t, NewIIS(IISNoWebWMI))
		_, err := remediate.InspectHost(ctx, r, "smtp01", prober)
		if !errors.Is(err, remediate.ErrFeatureMissing) {
			t.Fatalf("err = %v, want ErrFeatureMissing", err)
		}
	})
}

// TestIISInheritedRelayListOverWinRM: RelayIpList is inheritable. A virtual
// server with no value of its own enforces the service level's; WMI may
// report that inherited value as the server's while ADSI reads the node's
// own (none). relaylock compares the effective values, records where the
// value comes from, plans without --force, and a rollback makes the server
// inherit again. Every way the two readings can combine is run through
// the real WinRM client.
func TestIISInheritedRelayListOverWinRM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	prober := []netip.Addr{netip.MustParseAddr("198.51.100.7")}
	stranger := prober[0]
	for _, tc := range []struct {
		name     string
		setup    func(h *IISHost)
		from     string // RelayIpList.from before the change
		restored bool   // the server inherits again after the rollback
	}{
		{"wmi-effective", func(*IISHost) {}, "inherited from SmtpSvc", true},
		{"wmi-own-values", func(h *IISHost) { h.SetWMIReportsOwnValues(true) }, "inherited from SmtpSvc", true},
		{"adsi-unavailable", func(h *IISHost) { h.SetADSIError("Unknown error (0x80005000)") }, "unknown", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewIIS(IISInheritedOpen)
			tc.setup(h)
			l := startLab(t, Config{Host: h, WinRM: WSManConfig{MaxOperationTimeout: 5 * time.Second}})
			r := ntlmRunner(t, l)
			insp, err := remediate.InspectHost(ctx, r, "smtp01", prober)
			if err != nil {
				t.Fatal(err)
			}
			row := func(insp *remediate.Inspection, name string) string {
				for _, s := range insp.Settings {
					if s.Object == "SmtpSvc/1" && s.Name == name {
						return s.Value
					}
				}
				return ""
			}
			if got := row(insp, remediate.SettingRelayIpListFrom); !strings.HasPrefix(got, tc.from) {
				t.Errorf("RelayIpList.from = %q, want %q...", got, tc.from)
			}
			var open, mismatch bool
			for _, f := range insp.Findings {
				open = open || (f.ID == "IIS-RELAY-ALL-EXCEPT-EMPTY" && f.Explains)
				mismatch = mismatch || f.ID == "IIS-RELAY-LIST-DECODE-MISMATCH"
			}
			if !open || mismatch {
				t.Fatalf("open %v, mismatch %v: %+v", open, mismatch, insp.Findings)
			}
			allow, _ := remediate.ParseAddrRange("192.0.2.10")
			bk := filepath.Join(t.TempDir(), "backup.json")
			out, err := remediate.Remediate(ctx, remediate.Options{Host: "smtp01", Runner: r, Yes: true, Prober: prober,
				Request: remediate.Request{Allow: []remediate.AddrRange{allow}, NoLoopback: true}, BackupPath: bk})
			if err != nil {
				t.Fatalf("remediate (no --force): %v", err)
			}
			if unknownNote := strings.Contains(strings.Join(out.Plan.Notes, "\n"), "is unknown"); unknownNote != (tc.from == "unknown") {
				t.Errorf("plan notes %q: the unknown-inheritance note must appear exactly when inheritance is unknown", out.Plan.Notes)
			}
			if h.RelayAllowed(stranger, false, "x.example") || !h.RelayAllowed(netip.MustParseAddr("192.0.2.10"), false, "x.example") {
				t.Fatal("relay decisions after remediate are wrong")
			}
			if got := row(out.After, remediate.SettingRelayIpListFrom); got != "own value" {
				t.Errorf("after the change RelayIpList.from = %q", got)
			}
			b, sum, err := remediate.LoadBackup(bk)
			if err != nil {
				t.Fatal(err)
			}
			rec, _, err := remediate.Rollback(ctx, remediate.RollbackOptions{Host: "smtp01", Runner: r, Backup: b, BackupFile: bk, BackupSHA256: sum, Prober: prober})
			if err != nil || rec.Result != "restored" {
				t.Fatalf("rollback: %v (%+v)", err, rec)
			}
			if !h.RelayAllowed(stranger, false, "x.example") {
				t.Fatal("rollback did not bring the inherited open list back")
			}
			if own := h.State().Servers[0].RelayIpList; own.Null != tc.restored {
				t.Errorf("after rollback the server's own value is %s; want unset (inheriting) = %v", own, tc.restored)
			}
		})
	}
}

// TestIISUnsortedRelayListOverWinRM: the order of the addresses in an
// IPSECLIST is UNVERIFIED (remediate's relayListSorted). The lab looks
// them up by binary search, as IIS is believed to, so a list stored out of
// order (as public scripts append them) refuses some listed clients: it
// fails closed. relaylock reports such a list, and remediate rewrites it
// in order although its entries are already the requested ones.
func TestIISUnsortedRelayListOverWinRM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	listed := []string{"192.0.2.10", "127.0.0.1", "10.0.0.5"} // the stored order
	var grant []ipsecEntry
	for _, a := range listed {
		grant = append(grant, ipsecHost(a))
	}
	// The lab's encoder keeps the order it is given.
	h := NewIIS(IISClosed)
	st := h.State()
	st.Servers[0].RelayIpList = blobOf(ipsecList{grant: grant, flags: 1})
	h.SetState(st)
	for _, a := range listed {
		if h.RelayAllowed(netip.MustParseAddr(a), false, "x.example") {
			t.Errorf("listed %s relays from a list out of order: the lab does not search it as IIS is believed to", a)
		}
	}
	if h.RelayAllowed(netip.MustParseAddr("198.51.100.7"), false, "x.example") {
		t.Fatal("an unlisted address relays: out of order must fail closed")
	}

	l := startLab(t, Config{Host: h, WinRM: WSManConfig{MaxOperationTimeout: 5 * time.Second}})
	r := ntlmRunner(t, l)
	insp, err := remediate.InspectHost(ctx, r, "smtp01", nil)
	if err != nil {
		t.Fatal(err)
	}
	var unsorted bool
	for _, f := range insp.Findings {
		unsorted = unsorted || f.ID == "IIS-RELAY-LIST-UNSORTED"
	}
	if !unsorted {
		t.Fatalf("no IIS-RELAY-LIST-UNSORTED finding: %+v", insp.Findings)
	}
	var allow []remediate.AddrRange
	for _, a := range []string{"192.0.2.10", "10.0.0.5"} {
		ar, _ := remediate.ParseAddrRange(a)
		allow = append(allow, ar)
	}
	out, err := remediate.Remediate(ctx, remediate.Options{Host: "smtp01", Runner: r, Yes: true,
		Request: remediate.Request{Allow: allow, AllowAuthenticated: true}, BackupPath: filepath.Join(t.TempDir(), "backup.json")})
	if err != nil || out.NoChange {
		t.Fatalf("remediate must rewrite the list in order: %v (no change: %v)", err, out != nil && out.NoChange)
	}
	for _, a := range listed {
		if !h.RelayAllowed(netip.MustParseAddr(a), false, "x.example") {
			t.Errorf("%s is refused after the rewrite", a)
		}
	}
}
