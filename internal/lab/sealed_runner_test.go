package lab

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/remediate"
)

// TestRemediateRunnerSealedHTTP runs relaylock's own WinRM runner
// (masterzen/winrm with remediate's NTLM sealing transport, its default
// over plain HTTP) against a lab serving the Windows default listener:
// plain HTTP with AllowUnencrypted=false (Config.SealedHTTP). Detect and
// the inspection scripts must give the host's real answers, every SOAP
// message must have travelled sealed with sequence numbers advancing on
// its connection, and injected faults must come back (sealed) as the
// same typed errors as over HTTPS. The same runner without message
// encryption, or with Basic, is refused with 401 (remediate.ErrAuth).
func TestRemediateRunnerSealedHTTP(t *testing.T) {
	for _, platform := range append([]string{""}, Platforms()...) {
		name := platform
		if name == "" {
			name = "test-host"
		}
		t.Run(name, func(t *testing.T) {
			// Each host prepared as the README asks (on WinRM 2.0: the
			// shell memory quota raised; TestShellMemoryQuotaByDefault
			// shows the unprepared host).
			cfg := Config{Platform: platform, SealedHTTP: true, PrepareHost: true, WinRM: WSManConfig{MaxOperationTimeout: 5 * time.Second}}
			if platform == "" {
				cfg.Host = &echoHost{}
			}
			l := startLab(t, cfg)
			if l.HTTPS || l.CACertPEM != nil {
				t.Fatalf("SealedHTTP lab: HTTPS %v", l.HTTPS)
			}
			base := remediate.WinRMConfig{Host: l.WinRMHost, Port: l.WinRMPort, Auth: remediate.AuthNTLM,
				User: l.User, Password: l.Password, OperationTimeout: 5 * time.Second}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r, warns, err := remediate.NewWinRMRunner(base)
			if err != nil || len(warns) != 0 {
				t.Fatalf("runner: %v, warnings %q", err, warns)
			}
			want := l.Host.HostInfo()
			for i := 0; i < 3; i++ {
				info, _, err := remediate.Detect(ctx, r)
				if err != nil || info.ComputerName != want.ComputerName || info.OSVersion != want.OSVersion ||
					info.ExchangeVersion != want.ExchangeVersion || info.Platform == "" {
					t.Fatalf("detect %d: %+v, %v; want %+v", i, info, err, want)
				}
			}
			if platform == "iis" || strings.HasPrefix(platform, "exchange") {
				insp, err := remediate.InspectHost(ctx, r, l.WinRMHost, nil)
				if err != nil || len(insp.Settings) == 0 {
					t.Fatalf("InspectHost: %+v, %v", insp, err)
				}
			}
			if err := l.WinRM.Verify(remediate.DetectScript); err != nil {
				t.Fatal(err)
			}
			soap, sealed, maxSeq := SealStats(l.WinRM.Calls())
			if soap == 0 || sealed != soap || maxSeq < 3 {
				t.Fatalf("%d of %d SOAP calls sealed, highest sequence number %d", sealed, soap, maxSeq)
			}
			if hs := ntlmHandshakes(l.WinRM); hs == 0 || hs >= sealed {
				t.Fatalf("%d NTLM handshakes for %d sealed messages: connections are not reused", hs, sealed)
			}

			// Faults come back sealed and typed.
			l.Faults.Add(FaultRule{Kind: FaultAccessDenied, Action: "Create", Times: 1})
			if _, _, err := remediate.Detect(ctx, r); !errors.Is(err, remediate.ErrAccessDenied) {
				t.Fatalf("access denied: %v", err)
			}
			l.Faults.Add(FaultRule{Kind: FaultDrop, Action: "Receive", Times: 1})
			if _, _, err := remediate.Detect(ctx, r); !errors.Is(err, remediate.ErrUnreachable) {
				t.Fatalf("dropped connection: %v", err)
			}
			// After the drop the runner opens a new session and goes on.
			if _, _, err := remediate.Detect(ctx, r); err != nil {
				t.Fatalf("detect after a dropped connection: %v", err)
			}

			// Unsealed: NTLM without message encryption, and Basic.
			before := len(l.WinRM.Runs())
			for _, auth := range []string{remediate.AuthNTLM, remediate.AuthBasic} {
				c := base
				c.Auth, c.AllowUnencrypted = auth, true
				r, _, err := remediate.NewWinRMRunner(c)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := remediate.Detect(ctx, r); !errors.Is(err, remediate.ErrAuth) {
					t.Fatalf("unencrypted %s: %v", auth, err)
				}
			}
			if len(l.WinRM.Runs()) != before {
				t.Fatal("an unsealed request ran a command")
			}
			for _, c := range l.WinRM.Calls() {
				if c.Action != "" && !c.Sealed && c.Status == 200 {
					t.Fatalf("an unsealed request was accepted: %+v", c)
				}
			}

			bad := base
			bad.Password += "x"
			r, _, _ = remediate.NewWinRMRunner(bad)
			if _, _, err := remediate.Detect(ctx, r); !errors.Is(err, remediate.ErrAuth) {
				t.Fatalf("wrong password: %v", err)
			}
		})
	}
}

func TestSealedHTTPExcludesPlainHTTP(t *testing.T) {
	if _, err := Start(context.Background(), Config{Host: &echoHost{}, PlainHTTP: true, SealedHTTP: true}); err == nil {
		t.Fatal("PlainHTTP and SealedHTTP together were accepted")
	}
}
