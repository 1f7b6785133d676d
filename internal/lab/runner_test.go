package lab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaylock/relaylock/remediate"
)

// TestRemediateRunnerAgainstLab runs relaylock's own WinRM runner
// (remediate.WinRMRunner) against every registered platform of the lab:
// detect must give back the host's HostInfo, over HTTPS with NTLM and
// Basic (a local account; a domain account over Basic is ErrAuth, as on
// Windows), verifying the lab CA; a wrong password must be remediate.ErrAuth
// and an injected access-denied fault remediate.ErrAccessDenied.
func TestRemediateRunnerAgainstLab(t *testing.T) {
	// The test host always runs, so the test checks something even
	// before any platform simulation is registered.
	for _, platform := range append([]string{""}, Platforms()...) {
		name := platform
		if name == "" {
			name = "test-host"
		}
		t.Run(name, func(t *testing.T) {
			cfg := Config{Platform: platform, WinRM: WSManConfig{MaxOperationTimeout: 5 * time.Second}}
			if platform == "" {
				cfg.Host = &echoHost{}
			}
			l := startLab(t, cfg)
			ca := filepath.Join(t.TempDir(), "ca.pem")
			if err := os.WriteFile(ca, l.CACertPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			base := remediate.WinRMConfig{Host: l.WinRMHost, Port: l.WinRMPort, HTTPS: true, CACertFile: ca,
				TLSServerName: l.TLSServerName, User: l.User, Password: l.Password, OperationTimeout: 5 * time.Second}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			detect := func(l *Lab, cfg remediate.WinRMConfig) {
				t.Helper()
				r, _, err := remediate.NewWinRMRunner(cfg)
				if err != nil {
					t.Fatal(err)
				}
				info, _, err := remediate.Detect(ctx, r)
				want := l.Host.HostInfo()
				if err != nil || info.ComputerName != want.ComputerName || info.OSVersion != want.OSVersion ||
					info.ExchangeVersion != want.ExchangeVersion || info.Platform == "" {
					t.Fatalf("%s as %s: detect %+v, %v; want %+v", cfg.Auth, cfg.User, info, err, want)
				}
			}
			ntlm := base
			ntlm.Auth = remediate.AuthNTLM
			detect(l, ntlm)
			// Basic logs on local accounts only: the Exchange labs' domain
			// account gets the 401 Windows gives (ErrAuth), a local
			// account on the same platform gets in.
			basic := base
			basic.Auth = remediate.AuthBasic
			if isDomainAccount(l.User) {
				r, _, _ := remediate.NewWinRMRunner(basic)
				if _, _, err := remediate.Detect(ctx, r); !errors.Is(err, remediate.ErrAuth) {
					t.Fatalf("basic with the domain account %s: %v, want ErrAuth", l.User, err)
				}
				local := cfg
				local.User = "Administrator"
				ll := startLab(t, local)
				if err := os.WriteFile(ca, ll.CACertPEM, 0o600); err != nil {
					t.Fatal(err)
				}
				basic.Port, basic.TLSServerName, basic.User, basic.Password = ll.WinRMPort, ll.TLSServerName, ll.User, ll.Password
				detect(ll, basic)
				if err := os.WriteFile(ca, l.CACertPEM, 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				detect(l, basic)
			}
			if err := l.WinRM.Verify(remediate.DetectScript); err != nil {
				t.Fatal(err)
			}
			bad := base
			bad.Password += "x"
			r, _, _ := remediate.NewWinRMRunner(bad)
			if _, _, err := remediate.Detect(ctx, r); !errors.Is(err, remediate.ErrAuth) {
				t.Fatalf("wrong password: %v", err)
			}
			l.Faults.Add(FaultRule{Kind: FaultAccessDenied, Action: "Create", Times: 1})
			r, _, _ = remediate.NewWinRMRunner(base)
			if _, _, err := remediate.Detect(ctx, r); !errors.Is(err, remediate.ErrAccessDenied) {
				t.Fatalf("access denied: %v", err)
			}
		})
	}
}
