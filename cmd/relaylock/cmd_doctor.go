package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
)

func doctorCommand(e *env, run func(context.Context, *env, engagement.DoctorOptions) error) *cli.Command {
	flags := append(winrmFlags(winrmHostFlag()), evidenceFlags(changeTicketFlag())...)
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
			return run(c.Context, e, engagement.DoctorOptions{WinRM: winrmOptions(c), Format: c.String("format"), Evidence: evidenceOptions(c)})
		},
	}
}
