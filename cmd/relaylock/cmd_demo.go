package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/atomicfile"
	"github.com/relaylock/relaylock/internal/lab"
)

// demoPlatforms are the platforms the README's demo test runs; the demo
// accepts every platform the lab does (labPlatformNames).
var demoPlatforms = []string{"iis", "exchange2003", "exchange2016"}

func demoCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run the whole job against a built-in lab on loopback: audit, inspect, remediate, re-test, evidence and PDF report",
		UsageText: "relaylock demo [--platform " + strings.Join(labPlatformNames(), "|") + "] [--out DIR]\n\n" +
			"Needs no Windows host, no network beyond loopback and no root; leaves no process behind.\n\n" +
			"Exit codes: 0 the demo closed the lab's relay; 1 error; 2 usage; 130 interrupted; any other: the code of the fix it ran.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "platform", Value: "iis", Usage: "simulated host `PLATFORM`: " + strings.Join(labPlatformNames(), ", ")},
			&cli.StringFlag{Name: "out", Value: "relaylock-demo", Usage: "write demo-evidence.json, demo-report.pdf and the backup into `DIR` (the only --out; files are --output/-o)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("demo takes no arguments")
			}
			platform := strings.ToLower(c.String("platform"))
			if !slices.Contains(lab.Platforms(), platform) {
				return usagef("--platform must be one of %s", strings.Join(labPlatformNames(), ", "))
			}
			out := c.String("out")
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
			password := demoPassword()
			l, err := lab.Start(c.Context, lab.Config{Platform: platform, Password: password})
			if err != nil {
				return fmt.Errorf("start the lab: %w", err)
			}
			defer l.Close()
			caFile := filepath.Join(out, "lab-ca.pem")
			if err := atomicfile.WriteFile(caFile, l.CACertPEM, 0o600); err != nil {
				return err
			}
			defer os.Remove(caFile)

			_, smtpPort, _ := net.SplitHostPort(l.SMTPAddr)
			fmt.Fprintf(e.Stderr, "relaylock: demo: lab %s on loopback: DNS %s, SMTP %s, WinRM %s (user %s)\n",
				platform, l.DNSAddr, l.SMTPAddr, l.WinRMURL, l.User)
			fmt.Fprintf(e.Stderr, "relaylock: demo: running: relaylock fix %s --allow 192.0.2.10 --allow 192.0.2.11 --no-loopback --yes ...\n", l.Domain)

			args := []string{"relaylock", "fix", l.Domain,
				"--dns-server", l.DNSAddr,
				"--ports", smtpPort,
				"--winrm-host", l.MXHost + "=" + net.JoinHostPort(l.WinRMHost, fmt.Sprint(l.WinRMPort)),
				"--winrm-user", l.User,
				"--winrm-ca", caFile,
				"--winrm-server-name", l.TLSServerName,
				"--allow", "192.0.2.10", "--allow", "192.0.2.11",
				"--no-loopback",
				"--yes",
				"--restart", "always",
				"--client", "Example Client Ltd (demo)",
				"--authorization", "DEMO-AUTH-0001 (lab only)",
				"--ticket", "DEMO-CHG-0001",
				"--evidence", evPath,
				"--backup", backup,
				"-o", pdfPath,
			}
			child := *e
			child.StdinIsTerminal = false
			child.Getenv = func(k string) string {
				if k == "RELAYLOCK_WINRM_PASSWORD" {
					return password
				}
				return e.Getenv(k)
			}
			start := time.Now()
			err = runApp(c.Context, &child, args)
			code := exitCode(c.Context, e.Stderr, err)
			fmt.Fprintf(e.Stdout, "\nDemo finished in %s against a simulated %s host.\n", time.Since(start).Round(time.Millisecond), platform)
			fmt.Fprintf(e.Stdout, "  evidence: %s (check it with: relaylock verify %s)\n", evPath, evPath)
			fmt.Fprintf(e.Stdout, "  report:   %s\n", pdfPath)
			fmt.Fprintf(e.Stdout, "Try it yourself against the same lab: relaylock lab --platform %s\n", platform)
			if code != exitOK {
				fmt.Fprintf(e.Stderr, "relaylock: demo: fix exited with code %d\n", code)
				return withCode(code, nil)
			}
			return nil
		},
	}
}

func demoPassword() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "Lab-" + hex.EncodeToString(b)
}
