package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

func rollbackCommand(e *env) *cli.Command {
	flags := append(winrmFlags(), evidenceFlags()...)
	flags = append(flags,
		&cli.StringFlag{Name: "backup", Usage: "backup `FILE` written by remediate", Required: true},
		&cli.StringSliceFlag{Name: "smtp-target", Usage: "`HOST[:PORT]` to re-test after the restore (default: the WinRM host)"},
		&cli.BoolFlag{Name: "no-retest", Usage: "do not probe after the restore"},
	)
	flags = append(flags, retestFlags()...)
	return &cli.Command{
		Name:      "rollback",
		Usage:     "restore exactly the state saved in a remediate backup, read it back and re-test",
		UsageText: "relaylock rollback --backup relaylock-backup-HOST-TIME.json [--winrm-host HOST] [--evidence FILE]",
		Flags:     flags,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("rollback takes no arguments")
			}
			b, sum, err := remediate.LoadBackup(c.String("backup"))
			if err != nil {
				return err
			}
			host := c.String("winrm-host")
			if host == "" {
				host = b.Host
			}
			if host != b.Host {
				fmt.Fprintf(e.Stderr, "relaylock: note: the backup was taken through %s; restoring through %s\n", b.Host, host)
			}
			fx, err := newFixer(c, e)
			if err != nil {
				return err
			}
			runner, user, err := fx.newRunner(host)
			if err != nil {
				return err
			}
			defer closeRunner(runner)
			fx.progress("restoring %s from %s", host, c.String("backup"))
			rec, after, rerr := remediate.Rollback(c.Context, remediate.RollbackOptions{
				Host: host, Runner: runner, Backup: b, BackupFile: c.String("backup"), BackupSHA256: sum,
				Prober: proberAddrs(lastAudit(c.String("evidence"))),
				OSUser: osUser(), WinRMUser: user, Ticket: c.String("ticket"),
			})
			if rec != nil {
				if err := fx.rec.update(func(bb *evidence.Bundle) {
					upsertChange(bb, *rec)
					if after != nil {
						bb.Inspections = append(bb.Inspections, *after)
					}
					msg := "restored the saved state and read it back"
					if rerr != nil {
						msg = "restore failed: " + rerr.Error()
					}
					fx.rec.log(bb, "rollback", host, msg)
				}); err != nil {
					return err
				}
			}
			if rerr != nil {
				return rerr
			}
			fmt.Fprintf(e.Stdout, "%s: restored %d setting(s) from %s and read them back\n", host, len(rec.Applied), c.String("backup"))
			for _, ch := range rec.Applied {
				fmt.Fprintf(e.Stdout, "  %s %s = %s\n", ch.Object, ch.Setting, oneLineValue(ch.New))
			}
			if c.Bool("no-retest") {
				return nil
			}
			targets := c.StringSlice("smtp-target")
			if len(targets) == 0 {
				targets = []string{host}
			}
			fx.progress("re-testing %v after the restore", targets)
			r, err := fx.probe(c.Context, targets, "rollback-retest", host)
			if err != nil {
				return fmt.Errorf("re-test after the restore: %w", err)
			}
			fmt.Fprintf(e.Stdout, "Re-test after the restore: %s\n", r.Verdict)
			return verdictExit(r)
		},
	}
}
