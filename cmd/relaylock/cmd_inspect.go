package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
)

func inspectCommand(e *env, run func(context.Context, *env, engagement.InspectOptions) error) *cli.Command {
	flags := append(winrmFlags(winrmHostFlag()), evidenceFlags(changeTicketFlag())...)
	flags = append(flags,
		&cli.StringSliceFlag{Name: "prober", DefaultText: "the source addresses of the last audit in --evidence", Usage: "`ADDR` the external probe came from (repeatable)"},
		&cli.StringFlag{Name: "format", Value: "text", Usage: "output `FORMAT`: text or json"},
		dcFlag(),
	)
	return &cli.Command{
		Name:  "inspect",
		Usage: "read a Windows mail host's relay settings over WinRM and name the root cause",
		UsageText: "relaylock inspect --winrm-host HOST [--winrm-user USER] [--format json] [--evidence FILE]\n\nThe password comes from RELAYLOCK_WINRM_PASSWORD, --winrm-password-file, or a prompt; never from a flag.\n\n" +
			"Exit codes: 0 no finding makes the host relay; 1 error; 2 usage; 3 a high-severity finding: the host relays; 6 the result was printed but the evidence file could not be written; 130 interrupted.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("inspect takes no arguments; name the host with --winrm-host")
			}
			return run(c.Context, e, engagement.InspectOptions{WinRM: winrmOptions(c), Probers: c.StringSlice("prober"),
				Format: c.String("format"), DC: c.String("dc"), Evidence: evidenceOptions(c)})
		},
	}
}
