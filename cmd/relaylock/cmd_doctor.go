package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/doctor"
	"github.com/relaylock/relaylock/report/evidence"
)

func doctorCommand(e *env) *cli.Command {
	flags := append(winrmFlags(), evidenceFlags()...)
	flags = append(flags, &cli.StringFlag{Name: "format", Value: "text", Usage: "output `FORMAT`: text or json"})
	return &cli.Command{
		Name:  "doctor",
		Usage: "check, read-only, what relaylock needs on a Windows host (listener, certificate, auth, PowerShell, stdin, quotas, features, second hop, Exchange shell)",
		UsageText: "relaylock doctor --winrm-host HOST [--winrm-user USER] [--format json] [--evidence FILE]\n\n" +
			"Changes nothing on the host; each failure names its fix.\n\nExit codes: 0 no check failed; 1 a check failed (or an error); 2 usage; 130 interrupted.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("doctor takes no arguments; name the host with --winrm-host")
			}
			host := c.String("winrm-host")
			if host == "" {
				return usagef("doctor: --winrm-host is required")
			}
			format := c.String("format")
			if format != "text" && format != "json" {
				return usagef("--format must be text or json")
			}
			cfg, warnings, err := winrmConfigFrom(c, e, host)
			if err != nil {
				return err
			}
			runner, w2, err := remediate.NewWinRMRunner(cfg)
			for _, w := range append(warnings, w2...) {
				fmt.Fprintf(e.Stderr, "relaylock: warning: %s\n", w)
			}
			if err != nil {
				return err
			}
			defer runner.Close()
			rep, err := doctor.Run(c.Context, doctor.Options{Config: cfg, Runner: runner})
			if err != nil {
				return err
			}
			if err := newRecorder(c, e, []string{host}).Update(func(b *evidence.Bundle) {
				for _, ch := range rep.Checks {
					b.Log = append(b.Log, evidence.LogEntry{Time: rep.Time, Step: "doctor", Host: host, Message: ch.LogLine()})
				}
			}); err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(e.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else if err := rep.WriteText(e.Stdout); err != nil {
				return err
			}
			if n := rep.Failed(); n > 0 {
				return withCode(exitError, fmt.Errorf("doctor: %d check(s) failed on %s", n, host))
			}
			return nil
		},
	}
}
