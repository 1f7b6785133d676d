package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
)

func rollbackCommand(e *env, run func(context.Context, *env, engagement.RollbackOptions) error) *cli.Command {
	flags := append(winrmFlags(winrmHostFlag()), evidenceFlags(changeTicketFlag())...)
	flags = append(flags,
		&cli.StringFlag{Name: "backup", Usage: "backup `FILE` written by remediate", Required: true},
		&cli.StringSliceFlag{Name: "smtp-target", Usage: "`HOST[:PORT]` to re-test after the restore (default: the endpoints the backup names, those probed before the change)"},
		&cli.BoolFlag{Name: "no-retest", Usage: "do not probe after the restore"},
		dcFlag(),
	)
	flags = append(flags, retestFlags()...)
	return &cli.Command{
		Name:  "rollback",
		Usage: "restore exactly the state saved in a remediate backup, read it back and re-test",
		UsageText: "relaylock rollback --backup relaylock-backup-HOST-TIME.json [--winrm-host HOST] [--evidence FILE]\n\n" +
			"Re-tests the endpoints the backup names (those probed before the change) unless --smtp-target is given.\n\n" +
			"Exit codes: 0 restored and the re-test shows no relay (or --no-retest); 1 error; 2 usage; 3 restored, and the\n" +
			"re-test shows the relay the backup's state had; 5 restored, but the re-test could not test everything; 6 restored, but the evidence file could not take the record;\n" +
			"130 interrupted.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("rollback takes no arguments")
			}
			return run(c.Context, e, engagement.RollbackOptions{WinRM: winrmOptions(c), Backup: c.String("backup"),
				SMTPTargets: c.StringSlice("smtp-target"), NoRetest: c.Bool("no-retest"), DC: c.String("dc"),
				Probe: probeOptions(c), Evidence: evidenceOptions(c)})
		},
	}
}
