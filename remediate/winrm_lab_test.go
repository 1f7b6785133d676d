package remediate_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// These tests run remediate.WinRMRunner against the lab's WS-Management
// server (internal/lab), which implements Basic and server-side NTLM
// over HTTP and HTTPS like a Windows host, on loopback.

func startLab(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	if cfg.Platform == "" && cfg.Host == nil {
		cfg.Platform = "iis"
	}
	if cfg.WinRM.MaxOperationTimeout == 0 {
		cfg.WinRM.MaxOperationTimeout = 2 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l, err := lab.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// labConfig is the runner config for l: NTLM, verifying the lab CA.
func labConfig(t *testing.T, l *lab.Lab) remediate.WinRMConfig {
	t.Helper()
	cfg := remediate.WinRMConfig{Host: l.WinRMHost, Port: l.WinRMPort, HTTPS: l.HTTPS, Auth: remediate.AuthNTLM,
		User: l.User, Password: l.Password, OperationTimeout: 2 * time.Second}
	if l.HTTPS {
		ca := filepath.Join(t.TempDir(), "lab-ca.pem")
		if err := os.WriteFile(ca, l.CACertPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.CACertFile = ca
	}
	return cfg
}

func runner(t *testing.T, cfg remediate.WinRMConfig) (*remediate.WinRMRunner, []string) {
	t.Helper()
	r, warns, err := remediate.NewWinRMRunner(cfg)
	if err != nil {
		t.Fatalf("NewWinRMRunner: %v", err)
	}
	return r, warns
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestLabNTLMOverHTTPS(t *testing.T) {
	for _, platform := range []string{"iis", "exchange2003", "exchange2007", "exchange2010", "exchange2019"} {
		t.Run(platform, func(t *testing.T) {
			l := startLab(t, lab.Config{Platform: platform})
			cfg := labConfig(t, l)
			for _, name := range []string{"", l.TLSServerName} { // by address, and by the certificate's name
				cfg.TLSServerName = name
				r, warns := runner(t, cfg)
				if len(warns) != 0 {
					t.Errorf("warnings %q", warns)
				}
				info, run, err := remediate.Detect(ctxT(t, 30*time.Second), r)
				if err != nil {
					t.Fatalf("Detect: %v", err)
				}
				want := l.Host.HostInfo()
				if info.ComputerName != want.ComputerName || info.ExchangeVersion != want.ExchangeVersion || info.Platform != want.Platform {
					t.Errorf("detect = %+v\nwant %+v", info, want)
				}
				if run.ExitCode != 0 || run.Output == nil || len(run.Errors) != 0 {
					t.Errorf("run = %+v", run)
				}
			}
			// What the host saw: the fixed command line, only the nonce as
			// parameter, and never the password.
			runs := l.WinRM.Runs()
			if len(runs) == 0 {
				t.Fatal("the lab ran nothing")
			}
			for _, lr := range runs {
				if lr.CommandLine != psframe.CommandLine() || lr.Script != remediate.DetectScript {
					t.Errorf("lab run %q %q", lr.Script, lr.CommandLine)
				}
				if len(lr.Params) != 1 || len(lr.Params[psframe.NonceParam]) != 32 {
					t.Errorf("params on the host: %q", lr.Params)
				}
				for _, v := range lr.Params {
					if strings.Contains(v, l.Password) {
						t.Error("password reached the host as a script parameter")
					}
				}
			}
		})
	}
}

func TestLabInspectReadOnly(t *testing.T) {
	l := startLab(t, lab.Config{Platform: "iis"})
	r, _ := runner(t, labConfig(t, l))
	insp, err := remediate.InspectHost(ctxT(t, 30*time.Second), r, l.WinRMHost, nil)
	if err != nil {
		t.Fatalf("InspectHost: %v", err)
	}
	if insp.Platform != remediate.PlatformIIS || len(insp.Settings) == 0 || len(insp.Runs) < 2 {
		t.Errorf("inspection: platform %s, %d settings, %d runs", insp.Platform, len(insp.Settings), len(insp.Runs))
	}
}

// The lab cannot seal NTLM messages (its CHALLENGE offers no sealing).
// Over plain HTTP the runner uses NTLM message encryption; it must fail
// cleanly rather than fall back to sending the commands in clear text,
// even though this lab (like a host with AllowUnencrypted=true) would
// accept them. (ntlmseal_test.go tests the sealed path against a peer that
// seals.)
func TestLabNTLMEncryptionNeverDowngrades(t *testing.T) {
	l := startLab(t, lab.Config{Platform: "iis", PlainHTTP: true})
	cfg := labConfig(t, l)
	r, warns := runner(t, cfg)
	if len(warns) != 0 {
		t.Errorf("warnings %q", warns)
	}
	_, err := r.Run(ctxT(t, 30*time.Second), remediate.DetectScript, nil)
	if err == nil {
		t.Fatal("NTLM message encryption against a lab that cannot seal succeeded")
	}
	for _, c := range l.WinRM.Calls() {
		if c.Action == "Create" && c.Status == 200 {
			t.Errorf("the lab accepted an unencrypted Create: the client fell back to clear text (%+v)", c)
		}
	}
	if !errors.Is(err, remediate.ErrWinRM) || !strings.Contains(err.Error(), "message encryption") {
		t.Errorf("err = %v, want a clear ErrWinRM about message encryption", err)
	}
}

func TestLabNTLMOverHTTPUnencrypted(t *testing.T) {
	l := startLab(t, lab.Config{Platform: "iis", PlainHTTP: true})
	cfg := labConfig(t, l)
	cfg.AllowUnencrypted = true
	r, warns := runner(t, cfg)
	if len(warns) != 1 || !strings.Contains(warns[0], "unencrypted") {
		t.Errorf("warnings %q", warns)
	}
	if _, _, err := remediate.Detect(ctxT(t, 30*time.Second), r); err != nil {
		t.Fatalf("Detect: %v", err)
	}
}

func TestLabErrors(t *testing.T) {
	l := startLab(t, lab.Config{Platform: "iis"})
	closed := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}()
	tests := []struct {
		name  string
		mod   func(c *remediate.WinRMConfig)
		fault *lab.FaultRule
		want  error
		text  string
	}{
		{"wrong password", func(c *remediate.WinRMConfig) { c.Password += "x" }, nil, remediate.ErrAuth, "authentication failed for " + l.User + " at " + l.WinRMHost},
		{"wrong password basic", func(c *remediate.WinRMConfig) { c.Password, c.Auth = "nope", remediate.AuthBasic }, nil, remediate.ErrAuth, "authentication failed for " + l.User},
		{"closed port", func(c *remediate.WinRMConfig) { c.Port = closed }, nil, remediate.ErrUnreachable, "cannot reach 127.0.0.1:" + strconv.Itoa(closed)},
		{"wrong certificate name", func(c *remediate.WinRMConfig) { c.TLSServerName = "mail.wrong.example" }, nil, remediate.ErrTLS, "mail.wrong.example"},
		{"untrusted certificate", func(c *remediate.WinRMConfig) { c.CACertFile = "" }, nil, remediate.ErrTLS, "unknown authority"},
		{"access denied", nil, &lab.FaultRule{Kind: lab.FaultAccessDenied, Action: "Create", Times: 1}, remediate.ErrAccessDenied, "not allowed"},
		{"internal error on command", nil, &lab.FaultRule{Kind: lab.FaultInternalError, Action: "Command", Times: 1}, remediate.ErrWinRM, "ws-management fault"},
		{"connection dropped on receive", nil, &lab.FaultRule{Kind: lab.FaultDrop, Action: "Receive", Times: 1}, remediate.ErrUnreachable, "lost the connection to 127.0.0.1:"},
		{"result lost after the run", nil, &lab.FaultRule{Kind: lab.FaultDrop, Script: remediate.DetectScript, AfterRun: true, Times: 1}, remediate.ErrUnreachable, "outcome on the host is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := labConfig(t, l)
			if tt.mod != nil {
				tt.mod(&cfg)
			}
			if tt.fault != nil {
				l.Faults.Add(*tt.fault)
			}
			r, _ := runner(t, cfg)
			_, err := r.Run(ctxT(t, 30*time.Second), remediate.DetectScript, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %q, want it to mention %q", err, tt.text)
			}
			if strings.Contains(err.Error(), l.Password) {
				t.Error("error shows the password")
			}
		})
	}
}

func TestLabInsecureWarns(t *testing.T) {
	l := startLab(t, lab.Config{Platform: "iis"})
	cfg := labConfig(t, l)
	cfg.CACertFile, cfg.Insecure = "", true
	r, warns := runner(t, cfg)
	if len(warns) != 1 || !strings.Contains(warns[0], "certificate verification") {
		t.Errorf("warnings %q", warns)
	}
	if _, _, err := remediate.Detect(ctxT(t, 30*time.Second), r); err != nil {
		t.Fatalf("Detect: %v", err)
	}
}

// A host that stops answering must not hang the run past its context.
func TestLabHungHostHonoursContext(t *testing.T) {
	l := startLab(t, lab.Config{Platform: "iis"})
	l.Faults.Add(lab.FaultRule{Kind: lab.FaultHang, Action: "Receive"})
	r, _ := runner(t, labConfig(t, l))
	start := time.Now()
	_, err := r.Run(ctxT(t, 500*time.Millisecond), remediate.DetectScript, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run returned after %v", d)
	}
}

// Concurrent runs on one runner over NTLM: each handshake must stay on its
// own connection (a shared pool interleaved the legs and drew 401s).
func TestLabNTLMConcurrentRuns(t *testing.T) {
	l := startLab(t, lab.Config{Platform: "iis"})
	r, _ := runner(t, labConfig(t, l))
	ctx := ctxT(t, 60*time.Second)
	errs := make(chan error, 6)
	for range 6 {
		go func() {
			_, _, err := remediate.Detect(ctx, r)
			errs <- err
		}()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
