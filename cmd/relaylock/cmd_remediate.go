package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/internal/engagement"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

func remediateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "allow", Usage: "client allowed to relay, `ADDR`: an IP, a CIDR prefix or a FIRST-LAST range (repeatable or comma-separated)"},
		&cli.BoolFlag{Name: "allow-authenticated", Value: true, Usage: "let clients that authenticate relay (set =false to turn it off)"},
		&cli.BoolFlag{Name: "no-loopback", Usage: "do not add 127.0.0.1 to the IIS allow list"},
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

func remediateCommand(e *env) *cli.Command {
	flags := append(winrmFlags(), remediateFlags()...)
	flags = append(flags, evidenceFlags()...)
	flags = append(flags, retestFlags()...)
	return &cli.Command{
		Name:  "remediate",
		Usage: "restrict relaying to listed and authenticated clients, with a plan, a backup, a read-back, a rollback and a re-test",
		UsageText: "relaylock remediate --winrm-host HOST --allow 192.0.2.10 --allow 198.51.100.0/24 [--dry-run] [--yes] [--evidence FILE]\n\n" +
			"Exit codes: 0 remediated and the re-test is closed (or nothing to change); 1 error; 2 usage (a bad flag, or an --allow entry\n" +
			"refused before anything is touched); 3 the host relays and nothing was applied (the change was declined, or --yes\n" +
			"is missing while stdin is not a terminal); 4 applied but the re-test still shows a relay; 5 the re-test\n" +
			"could not test every endpoint (not verified); 6 done, but the evidence file could not take\n" +
			"a record after the change began; 130 interrupted.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("remediate takes no arguments; name the host with --winrm-host")
			}
			host := c.String("winrm-host")
			if host == "" {
				return usagef("remediate: --winrm-host is required")
			}
			req, err := requestFrom(c)
			if err != nil {
				return err
			}
			fx, err := newFixer(c, e)
			if err != nil {
				return err
			}
			targets, err := remediateTargets(c, fx, host)
			if err != nil {
				return err
			}
			res, err := fx.fixHost(c.Context, host, targets, req, nil)
			if err != nil {
				return err
			}
			return res.exitErr()
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

// fixer carries what remediate and fix share for one run.
type fixer struct {
	c   *cli.Context
	e   *env
	rec *engagement.Recorder
	// interactive is true when the operator can be asked.
	interactive bool
	in          *bufio.Reader
	backupDir   string
	// newRunner opens a WinRM runner for a host (a seam for tests).
	newRunner func(host string) (remediate.Runner, string, error)
	// authRetest holds the hosts whose re-test adds the bogus-AUTH tests
	// (guestRelay).
	authRetest map[string]bool
	// hostOpts carries --dc to the drivers.
	hostOpts remediate.HostOptions
	// backupsUsed are the backup names this run has given out (backupPath).
	backupsUsed map[string]bool
}

func newFixer(c *cli.Context, e *env) (*fixer, error) {
	ev := c.String("evidence")
	dir := "."
	if ev != "" {
		dir = filepath.Dir(ev)
	}
	ho, err := engagement.HostOptions(c.String("dc"))
	if err != nil {
		return nil, err
	}
	f := &fixer{c: c, e: e, rec: newRecorder(c, e, nil), interactive: e.StdinIsTerminal, in: bufio.NewReader(e.Stdin), backupDir: dir, hostOpts: ho}
	f.newRunner = func(host string) (remediate.Runner, string, error) {
		return engagement.OpenRunner(e, winrmOptions(c), host)
	}
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
}

func (h *hostResult) exitErr() error {
	if h.stillOpen {
		return withCode(exitStillOpen, fmt.Errorf("%s still relays on re-test%s", h.host, triggerList(h.after)))
	}
	if h.unverified() {
		return withCode(exitInconclusive, fmt.Errorf("%s: the re-test was %s: the change is not verified%s", h.host, h.after.Verdict, engagement.InconclusiveWhy(h.after)))
	}
	return nil
}

// unverified: re-tested, but the re-test could not decide (an endpoint
// that could not be tested), so nothing proves the change worked.
func (h *hostResult) unverified() bool {
	return h.after != nil && h.after.Verdict != audit.VerdictOpen && h.after.Verdict != audit.VerdictClosed
}

func (f *fixer) progress(format string, a ...any) {
	if f.e.Quiet {
		return
	}
	fmt.Fprintf(f.e.Stderr, "relaylock: %s\n", audit.Printable(fmt.Sprintf(format, a...)))
}

func (f *fixer) confirm(p *remediate.Plan) (bool, error) {
	fmt.Fprintf(f.e.Stderr, "Apply these %d change(s) to %s? A backup is written first. [y/N] ", len(p.Changes), p.Host)
	line, err := f.in.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes", nil
}

// fixHost runs the whole remediation of one host. before, when given, is
// the audit that found it open; otherwise a baseline probe is run.
func (f *fixer) fixHost(ctx context.Context, host string, targets []string, req remediate.Request, before *audit.Result) (*hostResult, error) {
	c := f.c
	res := &hostResult{host: host, before: before}
	backup, err := f.backupPath(host)
	if err != nil {
		return res, err
	}
	retest := !c.Bool("no-retest")
	if retest && before == nil {
		f.progress("probing %s from outside before the change", strings.Join(targets, ", "))
		r, err := f.probe(ctx, targets, "audit", host)
		if err != nil {
			return res, fmt.Errorf("probe before the change: %w", err)
		}
		res.before = r
	}
	prober := engagement.ProberAddrs(res.before)
	runner, user, err := f.newRunner(host)
	if err != nil {
		return res, err
	}
	defer engagement.CloseRunner(runner)
	// The endpoints the change is judged by: rollback re-tests the same.
	var probed *audit.Result
	if before == nil {
		probed = res.before
	}
	ports, _ := engagement.ParsePorts(c.String("ports"))
	endpoints := retestEndpoints(targets, ports, probed)
	rollbackCmd := rollbackCommandLine(c, host, backup, endpoints)
	opts := remediate.Options{
		Host: host, Runner: runner, Request: req, Prober: prober,
		MaxPrefixV4: c.Int("max-prefix"), MaxPrefixV6: c.Int("max-prefix6"),
		DryRun: c.Bool("dry-run"), Yes: c.Bool("yes"),
		BackupPath: backup, NoAutoRollback: c.Bool("no-auto-rollback"),
		OSUser: engagement.OSUser(), WinRMUser: user, Ticket: c.String("ticket"),
		Endpoints: endpoints, MailDomain: c.String("mail-domain"), RollbackCommand: rollbackCmd,
	}
	if f.interactive {
		opts.Confirm = func(p *remediate.Plan) (bool, error) { return f.confirm(p) }
	}
	opts.HostOptions = f.hostOpts
	opts.Step = func(step string, o *remediate.Outcome) error {
		if step == "plan" {
			warnInsideView(f.e.Stderr, prober, req, o.Plan.Platform)
		}
		return f.onStep(step, host, o)
	}
	f.progress("reading %s over WinRM", host)
	out, err := remediate.Remediate(ctx, opts)
	res.out = out
	// A change rolled back (after a failure, or Ctrl-C during the
	// read-back) is no longer applied: the summary must say what stderr
	// said.
	if out != nil && out.Change != nil && len(out.Change.Applied) > 0 && out.Change.Result != "rolled-back" {
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
				return res, withCode(exitOpen, err)
			}
			return res, withCode(exitError, err)
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
	if insp := cmp.Or(out.After, out.Before); !c.Bool("auth-tests") && guestRelay(insp) {
		f.progress("%s: authenticated clients may relay and the Guest account is enabled, so a failed login may log on as Guest: the re-test adds the bogus-AUTH tests (A41)", host)
		if f.authRetest == nil {
			f.authRetest = map[string]bool{}
		}
		f.authRetest[host] = true
	}
	f.progress("re-testing %s from outside", strings.Join(targets, ", "))
	after, err := f.probe(ctx, targets, "retest", host)
	if err != nil {
		return res, fmt.Errorf("re-test: %w", err)
	}
	res.after = after
	if after.Verdict == audit.VerdictOpen && !out.NoChange {
		if f.restart(ctx, runner, host, out) {
			f.progress("re-testing %s after the restart", strings.Join(targets, ", "))
			if again, err := f.probe(ctx, targets, "retest", host); err == nil {
				res.after = again
			} else {
				return res, fmt.Errorf("re-test after restart: %w", err)
			}
		}
	}
	writeBeforeAfter(f.e.Stdout, res.before, res.after)
	res.stillOpen = res.after.Verdict == audit.VerdictOpen
	return res, nil
}

// relays reports whether the host was seen relaying: by the probe before
// the change, or by a high-severity finding of the inspection.
func relays(before *audit.Result, out *remediate.Outcome) bool {
	if before != nil && before.Verdict == audit.VerdictOpen {
		return true
	}
	return out != nil && out.Before != nil && engagement.OpenFinding(out.Before)
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
	policy := f.c.String("restart")
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
		line, _ := f.in.ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return false
		}
	}
	f.progress("restarting %s on %s", svc, host)
	run, err := r.Run(ctx, "service-restart", map[string]string{"service": svc})
	f.rec.UpdateOrWarn(f.e.Stderr, "the restart of "+svc+" on "+host, func(b *evidence.Bundle) {
		msg := "restarted " + svc
		if err != nil {
			msg = "restart of " + svc + " failed: " + err.Error()
		}
		if run != nil {
			msg += " (script sha256 " + run.SHA256 + ")"
		}
		f.rec.Log(b, "restart", host, msg)
	})
	if err != nil {
		fmt.Fprintf(f.e.Stderr, "relaylock: warning: restart %s: %v\n", svc, err)
		return false
	}
	return true
}

// onStep saves each step into the evidence as it happens, so that the
// backup is recorded before the first change.
func (f *fixer) onStep(step, host string, o *remediate.Outcome) error {
	switch step {
	case "plan":
		fmt.Fprint(printableLines{W: f.e.Stdout}, remediate.FormatPlan(o.Plan)) // values come from the host
	}
	record := func(b *evidence.Bundle) {
		switch step {
		case "plan":
			if o.Before != nil {
				b.Inspections = append(b.Inspections, *o.Before)
			}
			b.Plans = append(b.Plans, *o.Plan)
			f.rec.Log(b, "plan", host, fmt.Sprintf("%d change(s) planned", len(o.Plan.Changes)))
		case "backup":
			b.Backups = append(b.Backups, evidence.BackupRef{File: o.BackupFile, SHA256: o.BackupSHA256, Backup: o.Backup})
			f.rec.Log(b, "backup", host, "backup written and synced: "+o.BackupFile+" (sha256 "+o.BackupSHA256+")")
		default: // apply, readback, rollback, failed, pending
			if o.Change != nil {
				upsertChange(b, *o.Change)
			}
			if (step == "readback" || step == "pending") && o.After != nil {
				b.Inspections = append(b.Inspections, *o.After)
			}
			f.rec.Log(b, step, host, stepMessage(step, o))
		}
	}
	if step == "plan" || step == "backup" {
		// Nothing has changed yet: no change without its backup recorded.
		return f.rec.Update(record)
	}
	// The change has happened: carry on (read back, roll back, re-test)
	// and say that its record is missing.
	f.rec.UpdateOrWarn(f.e.Stderr, "the "+step+" record of "+host, record)
	return nil
}

func stepMessage(step string, o *remediate.Outcome) string {
	switch step {
	case "apply":
		return fmt.Sprintf("%d change(s) applied", len(o.Change.Applied))
	case "readback":
		return "settings read back and match the plan"
	case "rollback":
		return "change failed and was rolled back: " + o.Change.Error
	case "failed":
		return "change failed: " + o.Change.Error
	case "pending":
		return "change pending (DS2MB), not rolled back: " + o.Change.Error
	}
	return step
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
func (f *fixer) probe(ctx context.Context, targets []string, purpose, host string) (*audit.Result, error) {
	opts, err := retestOptions(f.c, f.e, targets)
	if err != nil {
		return nil, err
	}
	if purpose == "retest" && f.authRetest[host] {
		opts.AuthTests = true
	}
	r, err := engagement.RunProbe(ctx, f.e, opts)
	if err != nil {
		return nil, err
	}
	f.progress("%s %s: %s", purpose, strings.Join(targets, ", "), engagement.ProbeCost(r))
	f.rec.UpdateOrWarn(f.e.Stderr, "the "+purpose+" of "+strings.Join(targets, ", "), func(b *evidence.Bundle) {
		b.Audits = append(b.Audits, evidence.AuditRun{Purpose: purpose, Host: host, Result: r})
		f.rec.Log(b, purpose, host, fmt.Sprintf("probed %s: %s", strings.Join(targets, ", "), r.Verdict))
	})
	return r, nil
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
	engagement.WriteEndpointReasons(w, after, true)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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

// warnInsideView warns when this machine's address will be allowed to
// relay after the change: the re-test then shows the inside view, not
// what a stranger sees. IIS and Exchange 2000/2003 plans add 127.0.0.1
// unless --no-loopback.
func warnInsideView(w io.Writer, prober []netip.Addr, req remediate.Request, p remediate.Platform) {
	allow := append([]remediate.AddrRange(nil), req.Allow...)
	if !req.NoLoopback && (p == remediate.PlatformIIS || p == remediate.PlatformExchange2003) {
		lo := netip.MustParseAddr("127.0.0.1")
		allow = append(allow, remediate.AddrRange{From: lo, To: lo})
	}
	for _, a := range prober {
		for _, r := range allow {
			if r.Contains(a) {
				fmt.Fprintf(w, "relaylock: warning: this machine's address %s is inside the allowed list (%s): the re-test will show the inside view, not what a stranger sees; re-test from another vantage point\n", a, r)
				break
			}
		}
	}
}
