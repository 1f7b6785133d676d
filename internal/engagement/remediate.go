package engagement

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// ChangeOptions say how remediate and fix make a change.
type ChangeOptions struct {
	// DryRun shows the plan and stops.
	DryRun bool
	// Yes applies without asking (required when stdin is not a terminal).
	Yes bool
	// Backup is the backup file; "" names one beside the evidence file
	// (or in the current directory), unique to the run.
	Backup         string
	NoAutoRollback bool
	// Restart is ask, never or always: whether to restart the mail
	// service when the re-test still shows a relay.
	Restart string
	// MaxPrefixV4 and MaxPrefixV6 are the widest allow entries accepted
	// without Request.Force.
	MaxPrefixV4, MaxPrefixV6 int
	// NoRetest skips the probes before and after.
	NoRetest bool
}

// RollbackLine is what the printed rollback command of a change names:
// the host and backup, the endpoints re-tested, the evidence file, and the
// values this run chose for the host (the WinRM port, TLS server name and
// SPN fix derives per host, the mail domain of the re-test).
type RollbackLine struct {
	Host, Backup    string
	Endpoints       []string
	Evidence        string
	WinRMPort       int
	ServerName, SPN string
	MailDomain      string
}

// RemediateOptions are the settings of a remediation of one host.
type RemediateOptions struct {
	// WinRM.Host is the host to remediate.
	WinRM   WinRMOptions
	Request remediate.Request
	Change  ChangeOptions
	// Probe shapes the probes before and after the change.
	Probe ProbeOptions
	// SMTPTargets are the endpoints to probe; none: those the evidence's
	// audit found for the host, else the host on Probe.Ports.
	SMTPTargets []string
	// DC is the domain controller of an Exchange 2000/2003 host.
	DC       string
	Evidence EvidenceOptions
	// RollbackCommand renders the rollback command printed for a change,
	// in the syntax of the command line the run was started from
	// (required: the command line is the caller's).
	RollbackCommand func(RollbackLine) string
}

// Remediate restricts relaying on one host to the listed and
// authenticated clients: a plan, a backup, the change, a read-back, a
// rollback on failure, and a re-test from outside before and after.
func Remediate(ctx context.Context, e *Env, o RemediateOptions) error {
	host := o.WinRM.Host
	if host == "" {
		return Usagef("remediate: --winrm-host is required")
	}
	fx, err := newFixer(ctx, e, o.Change, o.Probe, o.Evidence, o.DC, o.RollbackCommand)
	if err != nil {
		return err
	}
	fx.explicitTargets = len(o.SMTPTargets) > 0
	targets, err := fx.remediateTargets(o.SMTPTargets, o.Evidence.Path, host)
	if err != nil {
		return err
	}
	res, err := fx.fixHost(ctx, o.WinRM, targets, o.Request, nil)
	if err != nil {
		return err
	}
	return res.exitErr()
}

// fixer carries what remediate and fix share for one run.
type fixer struct {
	e   *Env
	rec *recorder
	// change, probeOpts and evidence are the run's settings; probeOpts'
	// MailDomain is filled in when the audit names the mail domain.
	change    ChangeOptions
	probeOpts ProbeOptions
	evidence  EvidenceOptions
	// rollbackCommand renders the printed rollback command.
	rollbackCommand func(RollbackLine) string
	// interactive is true when the operator can be asked.
	interactive bool
	in          *bufio.Reader
	backupDir   string
	// newRunner opens a WinRM runner for the host w reaches (a seam for
	// tests).
	newRunner func(w WinRMOptions) (remediate.Runner, string, error)
	// authRetest holds the hosts whose re-test adds the bogus-AUTH tests
	// (guestRelay).
	authRetest map[string]bool
	// hostOpts carries --dc to the drivers.
	hostOpts remediate.HostOptions
	// backupsUsed are the backup names this run has given out (backupPath).
	backupsUsed map[string]bool
	// explicitTargets: the operator named the endpoints to probe
	// (--smtp-target), rather than the evidence or the defaults.
	explicitTargets bool
	// unrecorded are the records of probes made before a host was
	// inspected, held until the host is known to be the machine the
	// evidence knows under its address (sameHost), or the run ends
	// without that being refuted; otherMachine: it was refuted, and
	// nothing more of this run goes into that evidence.
	unrecorded   []func()
	otherMachine bool
}

// flush records what is held back, unless the evidence belongs to
// another machine.
func (f *fixer) flush() {
	if f.otherMachine {
		return
	}
	for _, rec := range f.unrecorded {
		rec()
	}
	f.unrecorded = nil
}

func newFixer(ctx context.Context, e *Env, change ChangeOptions, probe ProbeOptions, ev EvidenceOptions, dc string, rollbackCommand func(RollbackLine) string) (*fixer, error) {
	dir := "."
	if ev.Path != "" {
		dir = filepath.Dir(ev.Path)
	}
	ho, err := hostOptions(dc)
	if err != nil {
		return nil, err
	}
	f := &fixer{e: e, rec: newRecorder(ctx, e, ev, nil), change: change, probeOpts: probe, evidence: ev, rollbackCommand: rollbackCommand,
		interactive: e.StdinIsTerminal, in: bufio.NewReader(e.Stdin), backupDir: dir, hostOpts: ho}
	f.newRunner = func(w WinRMOptions) (remediate.Runner, string, error) { return openRunner(e, w, w.Host) }
	return f, nil
}

// hostResult is the outcome for one remediated host.
type hostResult struct {
	host      string
	before    *audit.Result
	after     *audit.Result
	out       *remediate.Outcome
	applied   bool
	stillOpen bool
	// pending: applied to Active Directory, not yet copied into the
	// metabase by DS2MB (Exchange 2000/2003); not re-tested.
	pending bool
	// inside is the re-test's inside view (evidence.AuditRun.InsideView);
	// insideOnly: the re-test is open only where it came from an allowed
	// address, so it is not verified rather than still open.
	inside     []evidence.InsideView
	insideOnly bool
}

func (h *hostResult) exitErr() error {
	if h.insideOnly {
		return WithCode(ExitInconclusive, fmt.Errorf("%s: not verified (inside view): %s", h.host, insideViewText(h.inside)))
	}
	if h.stillOpen {
		return WithCode(ExitStillOpen, fmt.Errorf("%s still relays on re-test%s", h.host, triggerList(h.after)))
	}
	if h.unverified() {
		return WithCode(ExitInconclusive, fmt.Errorf("%s: the re-test was %s: the change is not verified%s", h.host, h.after.Verdict, inconclusiveWhy(h.after)))
	}
	return nil
}

// unverified: re-tested, but the re-test could not decide (an endpoint
// that could not be tested), so nothing proves the change worked.
func (h *hostResult) unverified() bool {
	return h.insideOnly || h.after != nil && h.after.Verdict != audit.VerdictOpen && h.after.Verdict != audit.VerdictClosed
}

func (f *fixer) progress(format string, a ...any) { f.e.progress(format, a...) }

// confirm asks before the change; note, if not empty, is said first.
func (f *fixer) confirm(ctx context.Context, p *remediate.Plan, note string) (bool, error) {
	if note != "" {
		fmt.Fprintf(f.e.Stderr, "NOTE: %s\n", note)
	}
	fmt.Fprintf(f.e.Stderr, "Apply these %d change(s) to %s? A backup is written first. [y/N] ", len(p.Changes), p.Host)
	line, err := f.readLine(ctx)
	if err != nil {
		if ctx.Err() != nil {
			// Ctrl-C at the prompt is an interruption (exit 130), not
			// a refusal.
			fmt.Fprintln(f.e.Stderr) // end the prompt's line
			return false, fmt.Errorf("no answer, nothing was changed (%w)", ctx.Err())
		}
		return false, err
	}
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes", nil
}

// readLine reads the operator's answer, ending with ctx: a read from a
// terminal does not end on SIGINT by itself. A line cut short by EOF is
// the answer; a read ended by ctx returns ctx's error, whatever it read.
// After an interruption the reader is left to the goroutine; nothing
// reads it again in this run.
func (f *fixer) readLine(ctx context.Context) (string, error) {
	type answer struct {
		line string
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		line, err := f.in.ReadString('\n')
		ch <- answer{line, err}
	}()
	select {
	case a := <-ch:
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if a.err != nil && !errors.Is(a.err, io.EOF) {
			return "", a.err
		}
		return a.line, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// fixHost runs the whole remediation of the host w reaches, probed at
// targets. before, when given, is the audit that found it open; otherwise
// a baseline probe is run.
func (f *fixer) fixHost(ctx context.Context, w WinRMOptions, targets []string, req remediate.Request, before *audit.Result) (*hostResult, error) {
	host := w.Host
	res := &hostResult{host: host, before: before}
	backup, err := f.backupPath(w)
	if err != nil {
		return res, err
	}
	retest := !f.change.NoRetest
	defer f.flush()
	if retest && before == nil {
		f.progress("probing %s from outside before the change", strings.Join(targets, ", "))
		r, err := f.probeOnly(ctx, targets, evidence.PurposeAudit, host)
		if err != nil {
			return res, fmt.Errorf("probe before the change: %w", err)
		}
		res.before = r
		f.unrecorded = append(f.unrecorded, func() { f.recordProbe(r, targets, evidence.PurposeAudit, host, "", nil) })
	}
	prober := proberAddrs(res.before)
	runner, user, err := f.newRunner(w)
	if err != nil {
		return res, err
	}
	defer closeRunner(runner)
	// The endpoints the change is judged by: rollback re-tests the same.
	var probed *audit.Result
	if before == nil {
		probed = res.before
	}
	ports, _ := parsePorts(f.probeOpts.Ports)
	endpoints := retestEndpoints(targets, ports, probed)
	rollbackCmd := f.rollbackCommand(RollbackLine{Host: host, Backup: backup, Endpoints: endpoints, Evidence: f.evidence.Path,
		WinRMPort: w.Port, ServerName: w.ServerName, SPN: w.SPN, MailDomain: f.probeOpts.MailDomain})
	opts := remediate.Options{
		Host: host, Runner: runner, Request: req, Prober: prober,
		MaxPrefixV4: f.change.MaxPrefixV4, MaxPrefixV6: f.change.MaxPrefixV6,
		DryRun: f.change.DryRun, Yes: f.change.Yes,
		BackupPath: backup, NoAutoRollback: f.change.NoAutoRollback,
		OSUser: osUser(), WinRMUser: user, Ticket: f.evidence.Ticket,
		Endpoints: endpoints, MailDomain: f.probeOpts.MailDomain, RollbackCommand: rollbackCmd,
	}
	// note is what the operator is told before being asked (the probe
	// before the change could test nothing).
	var note string
	if f.interactive {
		opts.Confirm = func(p *remediate.Plan) (bool, error) { return f.confirm(ctx, p, note) }
	}
	opts.HostOptions = f.hostOpts
	// allow is the allowed list the change leaves: a re-test from inside
	// it shows the inside view.
	var allow []allowEntry
	opts.Step = func(step remediate.Step, o *remediate.Outcome) error {
		if step == remediate.StepPlan {
			// Before anything is recorded or changed: is this the
			// machine the evidence knows under this address?
			if err := sameHost(f.evidence.Path, host, o.Before); err != nil {
				f.otherMachine = true
				return err
			}
			f.flush()
			allow = allowedList(req, o.Plan.Platform)
			warnInsideView(f.e.Stderr, prober, allow)
			if retest && !o.NoChange {
				n, err := f.untestedBefore(res.before, targets, o)
				if err != nil {
					return err
				}
				note = n
			}
		}
		return f.onStep(step, host, o)
	}
	f.progress("reading %s over WinRM", host)
	out, err := remediate.Remediate(ctx, opts)
	res.out = out
	// A change rolled back (after a failure, or Ctrl-C during the
	// read-back) is no longer applied: the summary must say what stderr
	// said.
	if out != nil && out.Change != nil && len(out.Change.Applied) > 0 && out.Change.Result != remediate.ResultRolledBack {
		res.applied = true
	}
	if err != nil {
		if errors.Is(err, remediate.ErrNotConfirmed) {
			if errors.Is(err, remediate.ErrNoConfirmer) {
				err = fmt.Errorf("%w; pass --yes to apply without asking", err)
			}
			// Nothing was applied: exit 3 when the host relays (README
			// "Exit codes"), as the command's help says.
			if relays(res.before, out) {
				return res, WithCode(ExitOpen, err)
			}
			return res, WithCode(ExitError, err)
		}
		if errors.Is(err, remediate.ErrPending) {
			// Exit 1: not done yet, and not re-tested (the metabase still
			// has the old values); nothing was rolled back.
			res.pending = true
			f.progress("%s: pending (DS2MB): not re-tested; re-check with: relaylock inspect --winrm-host %s", host, host)
		}
		return res, err
	}
	if opts.DryRun {
		f.progress("dry run: nothing was changed")
		return res, nil
	}
	if out.NoChange {
		f.progress("%s: no change needed; relaying is already restricted as requested", host)
	} else {
		f.progress("%s: %d change(s) applied and read back; backup %s", host, len(out.Change.Applied), out.BackupFile)
		fmt.Fprintf(f.e.Stdout, "rollback command: %s\n", rollbackCmd)
	}
	if !retest {
		return res, nil
	}
	if insp := cmp.Or(out.After, out.Before); !f.probeOpts.AuthTests && guestRelay(insp) {
		f.progress("%s: authenticated clients may relay and the Guest account is enabled, so a failed login may log on as Guest: the re-test adds the bogus-AUTH tests (A41)", host)
		if f.authRetest == nil {
			f.authRetest = map[string]bool{}
		}
		f.authRetest[host] = true
	}
	f.progress("re-testing %s from outside", strings.Join(targets, ", "))
	after, err := f.probe(ctx, targets, evidence.PurposeRetest, host, out.Change.Ref(), allow)
	if err != nil {
		return res, fmt.Errorf("re-test: %w", err)
	}
	res.setAfter(after, allow)
	if after.Verdict == audit.VerdictOpen && !out.NoChange {
		// A restart is offered only when it could change what the
		// re-test shows: from inside the allowed list the host relays
		// whether or not the change is in effect.
		if res.insideOnly {
			f.progress("%s: not restarting the mail service: the re-test is an inside view, which a restart cannot change", host)
		} else if f.restart(ctx, runner, host, out) {
			f.progress("re-testing %s after the restart", strings.Join(targets, ", "))
			if again, err := f.probe(ctx, targets, evidence.PurposeRetest, host, out.Change.Ref(), allow); err == nil {
				res.setAfter(again, allow)
			} else {
				return res, fmt.Errorf("re-test after restart: %w", err)
			}
		}
	}
	writeBeforeAfter(f.e.Stdout, res.before, res.after)
	if res.insideOnly {
		fmt.Fprintf(f.e.Stdout, "NOT VERIFIED (inside view): %s\n", insideViewText(res.inside))
	}
	return res, nil
}

// setAfter takes the re-test r of a change that leaves allow.
func (h *hostResult) setAfter(r *audit.Result, allow []allowEntry) {
	h.after = r
	h.inside = insideView(r, allow)
	h.insideOnly = openOnlyInside(r, h.inside, allow)
	h.stillOpen = r.Verdict == audit.VerdictOpen && !h.insideOnly
}

// relays reports whether the host was seen relaying: by the probe before
// the change, or by a high-severity finding of the inspection.
func relays(before *audit.Result, out *remediate.Outcome) bool {
	if before != nil && before.Verdict == audit.VerdictOpen {
		return true
	}
	return out != nil && out.Before != nil && openFinding(out.Before)
}

// triggerList names the tests that found r open, as " (S1, A41c)", or "".
func triggerList(r *audit.Result) string {
	if r == nil {
		return ""
	}
	var ids []string
	for _, tg := range r.Targets {
		for _, ep := range tg.Endpoints {
			for _, id := range ep.Triggers {
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
	}
	if len(ids) == 0 {
		return ""
	}
	return " (" + strings.Join(ids, ", ") + ")"
}

// guestRelay: the host, as inspected, relays for authenticated clients
// while Basic logins and the Guest account are on (remediate's
// RELAY-AUTH-GUEST finding): whether a failed login relays can only be
// seen from outside, with the A41 tests.
func guestRelay(insp *remediate.Inspection) bool {
	if insp == nil {
		return false
	}
	for _, f := range insp.Findings {
		if strings.HasSuffix(f.ID, remediate.FindingAuthGuest) {
			return true
		}
	}
	return false
}

// restart restarts the mail service when the policy allows, and reports
// whether it did.
func (f *fixer) restart(ctx context.Context, r remediate.Runner, host string, out *remediate.Outcome) bool {
	policy := f.change.Restart
	svc := remediate.MailService(out.Before.HostInfo)
	if policy == "never" || svc == "" {
		f.progress("%s still relays on re-test; not restarting %s (--restart=%s)", host, svc, policy)
		return false
	}
	if policy == "ask" {
		if !f.interactive {
			f.progress("%s still relays on re-test; restart %s with --restart=always, or by hand", host, svc)
			return false
		}
		fmt.Fprintf(f.e.Stderr, "%s still relays. Restart %s on %s now? [y/N] ", host, svc, host)
		line, err := f.readLine(ctx)
		if err != nil {
			return false
		}
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return false
		}
	}
	f.progress("restarting %s on %s", svc, host)
	run, err := r.Run(ctx, "service-restart", map[string]string{"service": svc})
	f.rec.updateOrWarn(f.e.Stderr, "the restart of "+svc+" on "+host, func(b *evidence.Bundle) {
		msg := "restarted " + svc
		if err != nil {
			msg = "restart of " + svc + " failed: " + err.Error()
		}
		if run != nil {
			msg += " (script sha256 " + run.SHA256 + ")"
		}
		f.rec.log(b, "restart", host, msg)
	})
	if err != nil {
		fmt.Fprintf(f.e.Stderr, "relaylock: warning: restart %s: %v\n", svc, err)
		return false
	}
	return true
}

// onStep saves each step into the evidence as it happens, so that the
// backup is recorded before the first change.
func (f *fixer) onStep(step remediate.Step, host string, o *remediate.Outcome) error {
	if step == remediate.StepPlan {
		fmt.Fprint(PrintableLines{W: f.e.Stdout}, remediate.FormatPlan(o.Plan)) // values come from the host
	}
	record := func(b *evidence.Bundle) {
		switch step {
		case remediate.StepPlan:
			if o.Before != nil {
				b.AddInspection(*o.Before)
			}
			b.Plans = append(b.Plans, *o.Plan)
			f.rec.log(b, "plan", host, fmt.Sprintf("%d change(s) planned", len(o.Plan.Changes)))
		case remediate.StepBackup:
			b.Backups = append(b.Backups, evidence.BackupRef{File: o.BackupFile, SHA256: o.BackupSHA256, Backup: o.Backup})
			f.rec.log(b, "backup", host, "backup written and synced: "+o.BackupFile+" (sha256 "+o.BackupSHA256+")")
		default: // apply, readback, rollback, failed, pending
			if o.Change != nil {
				upsertChange(b, *o.Change)
			}
			if (step == remediate.StepReadback || step == remediate.StepPending) && o.After != nil {
				b.AddInspection(*o.After)
			}
			f.rec.log(b, string(step), host, stepMessage(step, o))
		}
	}
	if step == remediate.StepPlan || step == remediate.StepBackup {
		// Nothing has changed yet: no change without its backup recorded.
		return f.rec.update(record)
	}
	// The change has happened: carry on (read back, roll back, re-test)
	// and say that its record is missing.
	f.rec.updateOrWarn(f.e.Stderr, "the "+string(step)+" record of "+host, record)
	return nil
}

func stepMessage(step remediate.Step, o *remediate.Outcome) string {
	switch step {
	case remediate.StepApply:
		return fmt.Sprintf("%d change(s) applied", len(o.Change.Applied))
	case remediate.StepReadback:
		return "settings read back and match the plan"
	case remediate.StepRollback:
		return "change failed and was rolled back: " + o.Change.Error
	case remediate.StepFailed:
		return "change failed: " + o.Change.Error
	case remediate.StepPending:
		return "change pending (DS2MB), not rolled back: " + o.Change.Error
	}
	return string(step)
}

func upsertChange(b *evidence.Bundle, c remediate.ChangeRecord) {
	for i := range b.Changes {
		if b.Changes[i].ID == c.ID {
			b.Changes[i] = c
			return
		}
	}
	b.Changes = append(b.Changes, c)
}

// probe runs an audit of targets and records it in the evidence.
// allow, for a re-test, is the allowed list the change leaves: the run
// records its inside view.
func (f *fixer) probe(ctx context.Context, targets []string, purpose evidence.Purpose, host, change string, allow []allowEntry) (*audit.Result, error) {
	r, err := f.probeOnly(ctx, targets, purpose, host)
	if err != nil {
		return nil, err
	}
	f.recordProbe(r, targets, purpose, host, change, allow)
	return r, nil
}

// probeOnly runs an audit of targets without recording it.
func (f *fixer) probeOnly(ctx context.Context, targets []string, purpose evidence.Purpose, host string) (*audit.Result, error) {
	opts, err := f.probeOpts.auditOptions(f.e, targets)
	if err != nil {
		return nil, err
	}
	if purpose == evidence.PurposeRetest && f.authRetest[host] {
		opts.AuthTests = true
	}
	r, err := runProbe(ctx, f.e, opts)
	if err != nil {
		return nil, err
	}
	f.progress("%s %s: %s", purpose, strings.Join(targets, ", "), probeCost(r))
	return r, nil
}

// recordProbe records the probe r of targets in the evidence.
func (f *fixer) recordProbe(r *audit.Result, targets []string, purpose evidence.Purpose, host, change string, allow []allowEntry) {
	f.rec.updateOrWarn(f.e.Stderr, "the "+string(purpose)+" of "+strings.Join(targets, ", "), func(b *evidence.Bundle) {
		b.Audits = append(b.Audits, evidence.AuditRun{Purpose: purpose, Host: host, Change: change, InsideView: insideView(r, allow), Result: r})
		f.rec.log(b, string(purpose), host, fmt.Sprintf("probed %s: %s", strings.Join(targets, ", "), r.Verdict))
	})
}

func writeBeforeAfter(w io.Writer, before, after *audit.Result) {
	if after == nil {
		return
	}
	fmt.Fprintln(w, "\nRe-test from outside, before and after:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ENDPOINT\tTEST\tBEFORE\tAFTER")
	for _, d := range audit.Compare(before, after) {
		if !d.Before.IsOpen() && !d.After.IsOpen() && d.ID[0] != 'C' {
			continue // keep the table to what changed or matters
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", d.Endpoint, d.ID, orDash(string(d.Before)), orDash(string(d.After)))
	}
	tw.Flush()
	bv := "not probed"
	if before != nil {
		bv = string(before.Verdict)
	}
	fmt.Fprintf(w, "Verdict: before %s, after %s\n", bv, after.Verdict)
	if after.Verdict != audit.VerdictOpen && after.Verdict != audit.VerdictClosed {
		fmt.Fprintln(w, "NOT VERIFIED: the re-test could not test every endpoint, so nothing proves the change closed the relay:")
	}
	writeEndpointReasons(w, after, true)
}

func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	return b.String()
}
