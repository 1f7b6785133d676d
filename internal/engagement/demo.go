package engagement

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/relaylock/relaylock/internal/atomicfile"
	"github.com/relaylock/relaylock/internal/lab"
)

// DemoOptions are the settings of the demo.
type DemoOptions struct {
	// Platform is the simulated host's platform (LabPlatforms).
	Platform string
	// Out is the folder for the evidence, the report and the backup.
	Out string
	// Fix runs the whole job against the lab as d describes it, the way
	// the caller's command line would, in the environment child (no
	// terminal, the lab's password), says how to go on from there, and
	// returns the job's exit code.
	Fix func(ctx context.Context, child *Env, d DemoFix) int
}

// DemoFix is the lab the demo's fix runs against, and where it writes.
type DemoFix struct {
	Platform              string
	Domain, MXHost        string
	DNSAddr, SMTPPort     string
	WinRMHost             string
	WinRMPort             int
	User                  string
	CAFile, TLSServerName string
	Evidence, Report      string
	Backup                string
}

// Demo starts a lab on loopback and runs the whole job against it: audit,
// inspect, remediate, re-test, evidence and PDF report. It needs no
// Windows host and leaves no process behind.
func Demo(ctx context.Context, e *Env, o DemoOptions) error {
	platform := strings.ToLower(o.Platform)
	if !slices.Contains(lab.Platforms(), platform) {
		return Usagef("--platform must be one of %s", strings.Join(LabPlatforms(), ", "))
	}
	out := o.Out
	if err := os.MkdirAll(out, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	evPath := filepath.Join(out, "demo-evidence.json")
	pdfPath := filepath.Join(out, "demo-report.pdf")
	backup := filepath.Join(out, "demo-backup.json")
	// A fresh evidence file for each run, so the report shows this
	// run; the last run's backup is of a lab that is gone (and fix
	// never overwrites a backup).
	for _, p := range []string{evPath, pdfPath, evPath + ".lock", backup} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	pw := make([]byte, 12)
	rand.Read(pw) // never fails (crypto/rand, Go 1.24 and later)
	password := "Lab-" + hex.EncodeToString(pw)
	l, err := lab.Start(ctx, lab.Config{Platform: platform, Password: password, PrepareHost: true})
	if err != nil {
		return fmt.Errorf("start the lab: %w", err)
	}
	defer l.Close()
	for _, hc := range l.HostCommands { // what the README asks of this host's administrator (WinRM 2.0's memory quota)
		fmt.Fprintf(e.Stderr, "relaylock: demo: the simulated host was prepared as the README asks; its administrator ran: %s\n", hc)
	}
	caFile := filepath.Join(out, "lab-ca.pem")
	if err := atomicfile.WriteFile(caFile, l.CACertPEM, 0o600); err != nil {
		return err
	}
	defer os.Remove(caFile)

	_, smtpPort, _ := net.SplitHostPort(l.SMTPAddr)
	fmt.Fprintf(e.Stderr, "relaylock: demo: lab %s on loopback: DNS %s, SMTP %s, WinRM %s (user %s)\n",
		platform, l.DNSAddr, l.SMTPAddr, l.WinRMURL, l.User)
	child := *e
	child.StdinIsTerminal = false
	child.Getenv = func(k string) string {
		if k == EnvWinRMPassword {
			return password
		}
		return e.Getenv(k)
	}
	code := o.Fix(ctx, &child, DemoFix{Platform: platform, Domain: l.Domain, MXHost: l.MXHost, DNSAddr: l.DNSAddr, SMTPPort: smtpPort,
		WinRMHost: l.WinRMHost, WinRMPort: l.WinRMPort, User: l.User, CAFile: caFile, TLSServerName: l.TLSServerName,
		Evidence: evPath, Report: pdfPath, Backup: backup})
	if code != ExitOK {
		fmt.Fprintf(e.Stderr, "relaylock: demo: fix exited with code %d\n", code)
		return WithCode(code, nil)
	}
	return nil
}
