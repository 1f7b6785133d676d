package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
)

func demoCommand(e *env, run func(context.Context, *env, engagement.DemoOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run the whole job against a built-in lab on loopback: audit, inspect, remediate, re-test, evidence and PDF report",
		UsageText: "relaylock demo [--platform " + strings.Join(engagement.LabPlatforms(), "|") + "] [--out DIR]\n\n" +
			"Needs no Windows host, no network beyond loopback and no root; leaves no process behind.\n\n" +
			"Exit codes: 0 the demo closed the lab's relay; 1 error; 2 usage; 130 interrupted; any other: the code of the fix it ran.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "platform", Value: "iis", Usage: "simulated host `PLATFORM`: " + strings.Join(engagement.LabPlatforms(), ", ")},
			&cli.StringFlag{Name: "out", Value: "relaylock-demo", Usage: "write demo-evidence.json, demo-report.pdf and the backup into `DIR` (the only --out; files are --output/-o)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("demo takes no arguments")
			}
			return run(c.Context, e, engagement.DemoOptions{Platform: c.String("platform"), Out: c.String("out"), Fix: demoFix})
		},
	}
}

// demoFix runs `relaylock fix` against the demo's lab, non-interactively,
// with a sample allow list, says what to try next, and returns the fix's
// exit code.
func demoFix(ctx context.Context, child *env, d engagement.DemoFix) int {
	fmt.Fprintf(child.Stderr, "relaylock: demo: running: relaylock fix %s --allow 192.0.2.10 --allow 192.0.2.11 --no-loopback --yes ...\n", d.Domain)
	args := []string{"relaylock", "fix", d.Domain,
		"--dns-server", d.DNSAddr,
		"--ports", d.SMTPPort,
		"--winrm-host", d.MXHost + "=" + net.JoinHostPort(d.WinRMHost, fmt.Sprint(d.WinRMPort)),
		"--winrm-user", d.User,
		"--winrm-ca", d.CAFile,
		"--winrm-server-name", d.TLSServerName,
		"--allow", "192.0.2.10", "--allow", "192.0.2.11",
		"--no-loopback",
		"--yes",
		"--restart", "always",
		"--client", "Example Client Ltd (demo)",
		"--authorization", "DEMO-AUTH-0001 (lab only)",
		"--ticket", "DEMO-CHG-0001",
		"--evidence", d.Evidence,
		"--backup", d.Backup,
		"-o", d.Report,
	}
	start := time.Now()
	code := exitCode(ctx, child.Stderr, runApp(ctx, child, args))
	fmt.Fprintf(child.Stdout, "\nDemo finished in %s against a simulated %s host.\n", time.Since(start).Round(time.Millisecond), d.Platform)
	fmt.Fprintf(child.Stdout, "  evidence: %s (check it with: %s)\n", d.Evidence, d.Verify)
	fmt.Fprintf(child.Stdout, "  report:   %s\n", d.Report)
	// The fix printed a rollback command for this lab, which stops with
	// the demo (its ports and CA file go with it): say so, and where the
	// commands can be tried instead.
	fmt.Fprintf(child.Stdout, "The demo's lab has stopped, so the rollback command above no longer applies.\n")
	fmt.Fprintf(child.Stdout, "Try it yourself against a lab of the same kind, which keeps running and prints the commands to use: %s\n", d.TryLab)
	return code
}
