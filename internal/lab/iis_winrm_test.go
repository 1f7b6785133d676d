package lab

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaylock/relaylock/remediate"
)

// TestIISOverWinRM drives the IIS driver through the real WinRM client
// and the lab's WS-Management face: the scripts travel as the embedded
// text, parameters as data, and a missing Web-WMI reaches the caller as
// ErrFeatureMissing through the WinRM runner's own classification.
func TestIISOverWinRM(t *testing.T) {
	runner := func(t *testing.T, h Host) remediate.Runner {
		l := startLab(t, Config{Host: h, WinRM: WSManConfig{MaxOperationTimeout: 5 * time.Second}})
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
