package engagement

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/relaylock/relaylock/internal/atomicfile"
	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/internal/shellquote"
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
	// Verify is the command that checks the evidence, with relaylock
	// run the way the demo was started (demoProgram: relaylock, or
	// go run ./cmd/relaylock).
	Verify string
	// TryLab is the command line of a lab of the same kind, prepared as
	// the demo's was, whose printed commands work as printed.
	TryLab string
}

// Demo starts a lab on loopback and runs the whole job against it: audit,
// inspect, remediate, re-test, evidence and PDF report. It needs no
// Windows host and leaves no process behind.
func Demo(ctx context.Context, e *Env, o DemoOptions) error {
	platform, err := labPlatform(o.Platform)
	if err != nil {
		return err
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
	program := "relaylock"
	if exe, err := os.Executable(); err == nil {
		wd, _ := os.Getwd()
		program = demoProgram(exe, wd)
	}
	tryLab := LabCommandLine(program, LabOptions{Platform: platform, MaxMemoryPerShellMB: l.PreparedMaxMemoryPerShellMB})
	code := o.Fix(ctx, &child, DemoFix{Verify: program + " verify " + shellquote.Quote(evPath), TryLab: tryLab, Platform: platform, Domain: l.Domain, MXHost: l.MXHost, DNSAddr: l.DNSAddr, SMTPPort: smtpPort,
		WinRMHost: l.WinRMHost, WinRMPort: l.WinRMPort, User: l.User, CAFile: caFile, TLSServerName: l.TLSServerName,
		Evidence: evPath, Report: pdfPath, Backup: backup})
	if code != ExitOK {
		fmt.Fprintf(e.Stderr, "relaylock: demo: fix exited with code %d\n", code)
		return WithCode(code, nil)
	}
	return nil
}

// demoMainPackage is relaylock's main package, for `go run` outside the
// module's root folder.
const demoMainPackage = "github.com/relaylock/relaylock/cmd/relaylock"

// demoProgram is how the operator runs relaylock the way this process was
// started: exe is its executable, dir the working folder. `go run` builds
// the executable into a go-build folder (a temporary one, or the build
// cache), and puts no relaylock on PATH: then the commands the demo prints
// use `go run`, with the package as the README names it from the module's
// root folder, else by its import path (which works anywhere in the
// module).
func demoProgram(exe, dir string) string {
	goRun := false
	for d := filepath.Dir(exe); d != filepath.Dir(d); d = filepath.Dir(d) {
		if strings.HasPrefix(filepath.Base(d), "go-build") {
			goRun = true
			break
		}
	}
	if !goRun {
		return "relaylock"
	}
	if fi, err := os.Stat(filepath.Join(dir, "cmd", "relaylock", "main.go")); err == nil && fi.Mode().IsRegular() {
		return "go run ./cmd/relaylock"
	}
	return "go run " + demoMainPackage
}
