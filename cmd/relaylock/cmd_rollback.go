package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

func rollbackCommand(e *env) *cli.Command {
	flags := append(winrmFlags(), evidenceFlags()...)
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
			b, sum, err := remediate.LoadBackup(c.String("backup"))
			if err != nil {
				return err
			}
			if err := engagement.CheckBackupRecorded(e.Stderr, c.String("evidence"), c.String("backup"), b, sum); err != nil {
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
			defer engagement.CloseRunner(runner)
			fx.progress("restoring %s from %s", host, c.String("backup"))
			rec, after, rerr := remediate.Rollback(c.Context, remediate.RollbackOptions{
				Host: host, Runner: runner, Backup: b, BackupFile: c.String("backup"), BackupSHA256: sum,
				Prober: engagement.ProberAddrs(engagement.LastAudit(c.String("evidence"))),
				OSUser: engagement.OSUser(), WinRMUser: user, Ticket: c.String("ticket"),
				HostOptions: fx.hostOpts,
			})
			if rec != nil {
				fx.rec.UpdateOrWarn(e.Stderr, "the rollback record of "+host, func(bb *evidence.Bundle) {
					upsertChange(bb, *rec)
					if after != nil {
						bb.Inspections = append(bb.Inspections, *after)
					}
					msg := "restored the saved state and read it back"
					switch {
					case errors.Is(rerr, remediate.ErrPending):
						msg = "restore pending (DS2MB): " + rerr.Error()
					case rerr != nil:
						msg = "restore failed: " + rerr.Error()
					}
					fx.rec.Log(bb, "rollback", host, msg)
				})
			}
			if rerr != nil {
				return rerr
			}
			fmt.Fprintf(e.Stdout, "%s: restored %d setting(s) from %s and read them back\n", host, len(rec.Applied), c.String("backup"))
			for _, ch := range rec.Applied {
				fmt.Fprintf(e.Stdout, "  %s %s = %s\n", ch.Object, ch.Setting, engagement.OneLineValue(ch.New))
			}
			if c.Bool("no-retest") {
				return nil
			}
			targets, from := rollbackTargets(c, b, host)
			if c.String("mail-domain") == "" && b.MailDomain != "" {
				if err := c.Set("mail-domain", b.MailDomain); err != nil {
					return err
				}
			}
			fx.progress("re-testing %s after the restore (%s)", strings.Join(targets, ", "), from)
			r, err := fx.probe(c.Context, targets, "rollback-retest", host)
			if err != nil {
				return fmt.Errorf("re-test after the restore: %w", err)
			}
			fmt.Fprintf(e.Stdout, "Re-test after the restore: %s\n", r.Verdict)
			engagement.WriteEndpointReasons(e.Stdout, r, false)
			return engagement.VerdictExit(r)
		},
	}
}

// rollbackTargets are the endpoints to re-test after a restore, and where
// they came from: --smtp-target; else the endpoints the backup names (the
// ones probed before the change); else those of the evidence's last probe
// of the host; else those its last audit found for the host
// (auditedEndpoints); else the WinRM host on --ports.
func rollbackTargets(c *cli.Context, b *remediate.Backup, host string) ([]string, string) {
	if t := c.StringSlice("smtp-target"); len(t) > 0 {
		return t, "--smtp-target"
	}
	if len(b.Endpoints) > 0 {
		return b.Endpoints, "the endpoints probed before the change, from the backup"
	}
	if ev := c.String("evidence"); ev != "" {
		if bb, err := evidence.Load(ev); err == nil {
			for i := len(bb.Audits) - 1; i >= 0; i-- {
				if a := bb.Audits[i]; a.Host == b.Host && a.Result != nil {
					if eps := retestEndpoints(nil, nil, a.Result); len(eps) > 0 {
						return eps, "the endpoints of the last probe of " + b.Host + " in " + ev
					}
				}
			}
			if eps, _, _ := auditedEndpoints(bb, b.Host); len(eps) > 0 {
				return eps, "the endpoints the audit in " + ev + " found for " + b.Host
			}
		}
	}
	return []string{host}, "the WinRM host on --ports " + c.String("ports") + ": the backup names no endpoint; give --smtp-target to re-test others"
}
