package engagement

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// RollbackOptions are the settings of a rollback.
type RollbackOptions struct {
	// WinRM.Host is where to restore; "" is the host the backup names.
	WinRM WinRMOptions
	// Backup is the backup file remediate wrote.
	Backup string
	// SMTPTargets are the endpoints to re-test; none: those the backup
	// names (probed before the change), else those the evidence knows.
	SMTPTargets []string
	NoRetest    bool
	// DC is the domain controller of an Exchange 2000/2003 host.
	DC       string
	Probe    ProbeOptions
	Evidence EvidenceOptions
}

// Rollback restores exactly the state saved in a remediate backup, reads
// it back and re-tests.
func Rollback(ctx context.Context, e *Env, o RollbackOptions) error {
	b, sum, err := remediate.LoadBackup(o.Backup)
	if err != nil {
		return err
	}
	if err := checkBackupRecorded(e.Stderr, o.Evidence.Path, o.Backup, b, sum); err != nil {
		return err
	}
	host := o.WinRM.Host
	if host == "" {
		host = b.Host
	}
	if host != b.Host {
		fmt.Fprintf(e.Stderr, "relaylock: note: the backup was taken through %s; restoring through %s\n", b.Host, host)
	}
	fx, err := newFixer(ctx, e, ChangeOptions{}, o.Probe, o.Evidence, o.DC, nil)
	if err != nil {
		return err
	}
	w := o.WinRM
	w.Host = host
	runner, user, err := fx.newRunner(w)
	if err != nil {
		return err
	}
	defer closeRunner(runner)
	fx.progress("restoring %s from %s", host, o.Backup)
	rec, after, rerr := remediate.Rollback(ctx, remediate.RollbackOptions{
		Host: host, Runner: runner, Backup: b, BackupFile: o.Backup, BackupSHA256: sum,
		Prober: proberAddrs(lastAudit(o.Evidence.Path)),
		OSUser: osUser(), WinRMUser: user, Ticket: o.Evidence.Ticket,
		HostOptions: fx.hostOpts,
	})
	if rec != nil {
		fx.rec.updateOrWarn(e.Stderr, "the rollback record of "+host, func(bb *evidence.Bundle) {
			upsertChange(bb, *rec)
			if after != nil {
				bb.AddInspection(*after)
			}
			msg := "restored the saved state and read it back"
			switch {
			case errors.Is(rerr, remediate.ErrPending):
				msg = "restore pending (DS2MB): " + rerr.Error()
			case rerr != nil:
				msg = "restore failed: " + rerr.Error()
			}
			fx.rec.log(bb, "rollback", host, msg)
		})
	}
	if rerr != nil {
		return rerr
	}
	fmt.Fprintf(e.Stdout, "%s: restored %d setting(s) from %s and read them back\n", host, len(rec.Applied), o.Backup)
	for _, ch := range rec.Applied {
		fmt.Fprintf(e.Stdout, "  %s %s = %s\n", ch.Object, ch.Setting, oneLineValue(ch.New))
	}
	if o.NoRetest {
		return nil
	}
	targets, from := rollbackTargets(o, b, host)
	if fx.probeOpts.MailDomain == "" && b.MailDomain != "" {
		fx.probeOpts.MailDomain = b.MailDomain
	}
	fx.progress("re-testing %s after the restore (%s)", strings.Join(targets, ", "), from)
	r, err := fx.probe(ctx, targets, evidence.PurposeRollbackRetest, host, rec.Ref(), nil)
	if err != nil {
		return fmt.Errorf("re-test after the restore: %w", err)
	}
	fmt.Fprintf(e.Stdout, "Re-test after the restore: %s\n", r.Verdict)
	writeEndpointReasons(e.Stdout, r, false)
	return verdictExit(r)
}

// rollbackTargets are the endpoints to re-test after a restore, and where
// they came from: --smtp-target; else the endpoints the backup names (the
// ones probed before the change); else those of the evidence's last probe
// of the host; else those its last audit found for the host
// (auditedEndpoints); else the WinRM host on --ports.
func rollbackTargets(o RollbackOptions, b *remediate.Backup, host string) ([]string, string) {
	if t := o.SMTPTargets; len(t) > 0 {
		return t, "--smtp-target"
	}
	if len(b.Endpoints) > 0 {
		return b.Endpoints, "the endpoints probed before the change, from the backup"
	}
	if ev := o.Evidence.Path; ev != "" {
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
	return []string{host}, "the WinRM host on --ports " + o.Probe.Ports + ": the backup names no endpoint; give --smtp-target to re-test others"
}
