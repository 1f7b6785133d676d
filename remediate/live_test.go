package remediate_test

// Live test against a real Windows mail host (read-only).
//
// It is skipped unless RELAYLOCK_LIVE_WINRM_HOST is set, also in CI: CI has
// no Windows host, and tests never reach beyond loopback on their own. It
// runs the detect script and a read-only inspection (InspectHost: detect +
// the platform driver's read script); it never changes the host.
//
//	RELAYLOCK_LIVE_WINRM_HOST=mail.corp.example   host to reach (required)
//	RELAYLOCK_LIVE_WINRM_USER='CORP\admin'         WinRM user (required for ntlm/basic)
//	RELAYLOCK_WINRM_PASSWORD=...                   its password (never a flag)
//	RELAYLOCK_LIVE_WINRM_AUTH=ntlm                 ntlm (default), basic or kerberos
//	RELAYLOCK_LIVE_WINRM_PORT=5986                 default 5986 (HTTPS) / 5985 (HTTP)
//	RELAYLOCK_LIVE_WINRM_HTTP=1                    plain HTTP (NTLM message encryption)
//	RELAYLOCK_LIVE_WINRM_CA=/path/to/ca.pem        CA for a self-signed listener
//	RELAYLOCK_LIVE_WINRM_INSECURE=1                skip certificate verification
//
//	go test -run TestLive -v ./remediate/   (TestLiveDoctor: relaylock doctor's checklist)
//
// The host needs a WinRM listener (HTTPS: a certificate listener on 5986;
// `winrm quickconfig -transport:https`) and the user must be a local
// administrator (Exchange: also an organization administrator).

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/needs"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/doctor"
)

func liveConfig(t *testing.T) remediate.WinRMConfig {
	t.Helper()
	host := os.Getenv("RELAYLOCK_LIVE_WINRM_HOST")
	if host == "" {
		needs.Optional(t, "a live Windows host", "set RELAYLOCK_LIVE_WINRM_HOST (+ RELAYLOCK_LIVE_WINRM_USER, RELAYLOCK_WINRM_PASSWORD) to run it against a real Windows host; it is skipped in CI by design (no Windows host there)")
	}
	cfg := remediate.WinRMConfig{
		Host:       host,
		HTTPS:      os.Getenv("RELAYLOCK_LIVE_WINRM_HTTP") == "",
		Auth:       os.Getenv("RELAYLOCK_LIVE_WINRM_AUTH"),
		User:       os.Getenv("RELAYLOCK_LIVE_WINRM_USER"),
		Password:   os.Getenv("RELAYLOCK_WINRM_PASSWORD"),
		CACertFile: os.Getenv("RELAYLOCK_LIVE_WINRM_CA"),
		Insecure:   os.Getenv("RELAYLOCK_LIVE_WINRM_INSECURE") != "",
	}
	if p := os.Getenv("RELAYLOCK_LIVE_WINRM_PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("RELAYLOCK_LIVE_WINRM_PORT=%q: %v", p, err)
		}
		cfg.Port = n
	}
	return cfg
}

func TestLiveDetectAndInspect(t *testing.T) {
	cfg := liveConfig(t)
	r, warns, err := remediate.NewWinRMRunner(cfg)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	for _, w := range warns {
		t.Logf("warning: %s", w)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	info, run, err := remediate.Detect(ctx, r)
	if run != nil {
		t.Logf("detect: exit %d in %v, sha256 %s, stderr messages %q", run.ExitCode, run.End.Sub(run.Start), run.SHA256, run.Errors)
	}
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	b, _ := json.MarshalIndent(info, "", "  ")
	t.Logf("host info:\n%s", b)
	if info.OSVersion == "" || info.PSVersion == "" || len(info.Services) != len(remediate.ServicesOfInterest) {
		t.Errorf("detect returned incomplete host info")
	}

	insp, err := remediate.InspectHost(ctx, r, cfg.Host, nil)
	if err != nil {
		t.Fatalf("InspectHost: %v", err)
	}
	for _, s := range insp.Settings {
		t.Logf("setting %s %s = %s", s.Object, s.Name, s.Value)
	}
	for _, f := range insp.Findings {
		t.Logf("finding %s (%s): %s", f.ID, f.Severity, f.Title)
	}
	for _, run := range insp.Runs {
		if run.ExitCode != 0 {
			t.Errorf("script %s exited %d: %q", run.Script, run.ExitCode, run.Errors)
		}
	}
}

// TestLiveDoctor runs relaylock doctor's checklist against the real host
// (read-only) and fails on every failed check, printing its fix: the
// first thing to run, and to attach to a bug report, on a new host.
func TestLiveDoctor(t *testing.T) {
	cfg := liveConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := doctor.Run(ctx, doctor.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	_ = rep.WriteText(&b)
	t.Log("\n" + b.String())
	for _, c := range rep.Checks {
		if c.Status == doctor.Fail {
			t.Errorf("%s: %s (fix: %s)", c.ID, c.Detail, c.Fix)
		}
	}
}
