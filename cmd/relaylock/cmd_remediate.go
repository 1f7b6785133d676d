package main

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
	"github.com/relaylock/relaylock/remediate"
)

func remediateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "allow", Usage: "client allowed to relay, `ADDR`: an IP, a CIDR prefix or a FIRST-LAST range (repeatable or comma-separated)"},
		&cli.BoolFlag{Name: "allow-authenticated", Value: true, Usage: "let clients that authenticate relay (set =false to turn it off)"},
		&cli.BoolFlag{Name: "no-loopback", Usage: "do not add 127.0.0.1 to the allow list on IIS and Exchange 2000/2003 (otherwise listed, so that a re-test from this machine shows the inside view)"},
		&cli.BoolFlag{Name: "fix-domains", Usage: "also change remote domains (IIS) or accepted domains (Exchange) that allow relay (without it they are only reported)"},
		&cli.StringFlag{Name: "connector-name", Value: "relaylock Relay", Usage: "`NAME` of the dedicated Exchange relay connector for the allowed clients"},
		&cli.BoolFlag{Name: "dry-run", Usage: "show the plan and stop"},
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "apply without asking (required when stdin is not a terminal)"},
		&cli.StringFlag{Name: "backup", DefaultText: "beside the evidence file, or in the current directory", Usage: "write the backup to `FILE`"},
		&cli.BoolFlag{Name: "no-auto-rollback", Usage: "on a failure part-way, do not roll back automatically (print the rollback command instead)"},
		&cli.StringFlag{Name: "restart", Value: "ask", Usage: "restart the mail service if the re-test still shows a relay (`POLICY`): ask, never or always"},
		&cli.BoolFlag{Name: "force", Usage: "accept an allow list that covers everything or is wider than --max-prefix"},
		&cli.IntFlag{Name: "max-prefix", Value: 8, Usage: "widest IPv4 allow entry, and widest union of them, accepted without --force, as a prefix length `BITS`"},
		&cli.IntFlag{Name: "max-prefix6", Value: 32, Usage: "widest IPv6 allow entry, and widest union of them, accepted without --force, as a prefix length `BITS`"},
		&cli.DurationFlag{Name: "ds2mb-timeout", Value: 5 * time.Minute, Usage: "Exchange 2000/2003: how long (`DURATION`) to wait for DS2MB to copy Active Directory into the metabase (it is notified within 15 s, and runs every 15 min)"},
		&cli.StringSliceFlag{Name: "smtp-target", DefaultText: "the endpoints the --evidence audit found for the host, else the WinRM host", Usage: "`HOST[:PORT]` to probe before and after"},
		&cli.BoolFlag{Name: "no-retest", Usage: "do not probe before and after (not recommended: nothing proves the fix)"},
		dcFlag(),
	}
}

func remediateCommand(e *env, run func(context.Context, *env, engagement.RemediateOptions) error) *cli.Command {
	flags := append(winrmFlags(winrmHostFlag()), remediateFlags()...)
	flags = append(flags, evidenceFlags(changeTicketFlag())...)
	flags = append(flags, retestFlags()...)
	return &cli.Command{
		Name:  "remediate",
		Usage: "restrict relaying to listed and authenticated clients, with a plan, a backup, a read-back, a rollback and a re-test",
		UsageText: "relaylock remediate --winrm-host HOST --allow 192.0.2.10 --allow 198.51.100.0/24 [--dry-run] [--yes] [--evidence FILE]\n\n" +
			"Exit codes: 0 remediated and the re-test is closed (or nothing to change); 1 error; 2 usage (a bad flag, or an --allow entry\n" +
			"refused before anything is touched); 3 the host relays and nothing was applied (the change was declined, or --yes\n" +
			"is missing while stdin is not a terminal); 4 applied but the re-test still shows a relay; 5 the re-test\n" +
			"could not test every endpoint, or saw a relay only from inside the allowed list (not verified); 6 done, but\n" +
			"the evidence file could not take a record after the change began; 130 interrupted.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("remediate takes no arguments; name the host with --winrm-host")
			}
			if c.String("winrm-host") == "" {
				return usagef("remediate: --winrm-host is required")
			}
			req, err := requestFrom(c)
			if err != nil {
				return err
			}
			return run(c.Context, e, engagement.RemediateOptions{WinRM: winrmOptions(c), Request: req, Change: changeOptions(c),
				Probe: probeOptions(c), SMTPTargets: c.StringSlice("smtp-target"), DC: c.String("dc"), Evidence: evidenceOptions(c),
				RollbackCommand: rollbackLine(c)})
		},
	}
}

func requestFrom(c *cli.Context) (remediate.Request, error) {
	allow, err := allowFrom(c)
	if err != nil {
		return remediate.Request{}, err
	}
	if err := remediate.CheckConnectorName(c.String("connector-name")); err != nil {
		return remediate.Request{}, usagef("--connector-name: %v", err)
	}
	switch c.String("restart") {
	case "ask", "never", "always":
	default:
		return remediate.Request{}, usagef("--restart must be ask, never or always")
	}
	return remediate.Request{
		Allow:              allow,
		AllowAuthenticated: c.Bool("allow-authenticated"),
		NoLoopback:         c.Bool("no-loopback"),
		FixDomains:         c.Bool("fix-domains"),
		ConnectorName:      c.String("connector-name"),
		Force:              c.Bool("force"),
		SyncTimeout:        c.Duration("ds2mb-timeout"),
	}, nil
}

// changeOptions maps the flags that say how a change is made.
func changeOptions(c *cli.Context) engagement.ChangeOptions {
	return engagement.ChangeOptions{DryRun: c.Bool("dry-run"), Yes: c.Bool("yes"), Backup: c.String("backup"),
		NoAutoRollback: c.Bool("no-auto-rollback"), Restart: c.String("restart"),
		MaxPrefixV4: c.Int("max-prefix"), MaxPrefixV6: c.Int("max-prefix6"), NoRetest: c.Bool("no-retest")}
}
