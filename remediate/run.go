package remediate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/relaylock/relaylock/internal/atomicfile"
)

// InspectHost detects the platform of the host behind r and reads its
// relay settings with that platform's driver. prober are the addresses the
// external probe came from (they decide Finding.Explains).
//
// Before any read of an Exchange host it checks the second hop
// (CheckSecondHop): when AD or the Exchange shell cannot be reached it
// returns an error wrapping ErrSecondHop and an inspection holding only
// the host information and the runs, having read and changed nothing.
func InspectHost(ctx context.Context, r Runner, host string, prober []netip.Addr) (*Inspection, error) {
	return InspectHostWith(ctx, r, host, prober, HostOptions{})
}

// HostOptions are the operator's per-run choices that reach the drivers.
type HostOptions struct {
	// DC is the domain controller a driver that works on Active Directory
	// must read and write through (relaylock --dc); "" lets the driver
	// choose (Exchange 2000/2003: the one DS2MB reads).
	DC string
	// Warn, when set, is told each warning about the host as soon as
	// detection finds it, before any script that could be affected runs
	// (WinRM's shell memory quota, before the Exchange shell loads). The
	// warnings are also in Inspection.Warnings.
	Warn func(warning string)
}

// DCDriver is a driver that reads and writes Active Directory through one
// domain controller and can be told which.
type DCDriver interface {
	Driver
	// WithDC returns the driver working through domain controller dc.
	WithDC(dc string) Driver
}

// ErrDCNotApplicable: a domain controller was named for a platform whose
// relay settings are not in Active Directory.
var ErrDCNotApplicable = errors.New("a domain controller was named, but this platform does not keep its relay settings in Active Directory")

// driverWith returns the platform's driver, told o.DC when it is set.
func driverWith(p Platform, o HostOptions) (Driver, error) {
	d, err := DriverFor(p)
	if err != nil || o.DC == "" {
		return d, err
	}
	dd, ok := d.(DCDriver)
	if !ok {
		return nil, fmt.Errorf("domain controller %s: %w (%s)", o.DC, ErrDCNotApplicable, p)
	}
	return dd.WithDC(o.DC), nil
}

// InspectHostWith is InspectHost with the operator's choices.
func InspectHostWith(ctx context.Context, r Runner, host string, prober []netip.Addr, o HostOptions) (*Inspection, error) {
	info, run, err := Detect(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("detect platform of %s: %w", host, err)
	}
	d, err := driverWith(info.Platform, o)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", host, err)
	}
	var pre []ScriptRun
	if run != nil {
		pre = append(pre, *run)
	}
	warnings := quotaWarnings(info)
	if o.Warn != nil {
		for _, w := range warnings {
			o.Warn(w)
		}
	}
	hc, hrun, herr := CheckSecondHopOn(ctx, r, info, o.DC)
	if hrun != nil {
		pre = append(pre, *hrun)
	}
	if herr != nil {
		insp := &Inspection{Host: host, Time: time.Now().UTC(), Platform: info.Platform, HostInfo: info, Runs: pre, Warnings: warnings}
		return insp, fmt.Errorf("inspect %s (%s): %w", host, info.Platform, herr)
	}
	if hc != nil && hc.DomainController != "" && info.Platform == PlatformExchange && DomainControllerFrom(ctx) == "" {
		ctx = WithDomainController(ctx, hc.DomainController)
	}
	insp, err := d.Inspect(ctx, r, host, info, prober)
	if insp != nil {
		insp.Runs = append(pre, insp.Runs...)
		insp.Warnings = append(warnings, insp.Warnings...)
	}
	if err != nil {
		if len(warnings) > 0 {
			err = fmt.Errorf("%w (%s)", err, strings.Join(warnings, "; "))
		}
		return insp, fmt.Errorf("inspect %s (%s): %w", host, info.Platform, err)
	}
	for _, p := range prober {
		insp.Prober = append(insp.Prober, p.String())
	}
	return insp, nil
}

// Errors of a remediation run, for callers that map them to exit codes.
var (
	// ErrNotConfirmed: the operator declined, or no terminal to ask and
	// no confirmation in advance (Options.Yes).
	ErrNotConfirmed = errors.New("change not confirmed")
	// ErrNoConfirmer: with ErrNotConfirmed, there was nobody to ask
	// (Options.Confirm nil, Options.Yes false). cmd/ names its flag.
	ErrNoConfirmer = errors.New("no terminal to confirm the change")
	// ErrReadBack: the settings read back after the change differ from
	// the plan.
	ErrReadBack = errors.New("read-back does not match the plan")
	// ErrRolledBack marks a failed change that was rolled back.
	ErrRolledBack = errors.New("change rolled back")
	// ErrRollbackFailed marks a failed change whose rollback failed too:
	// the host may be in a mixed state; the error says what to run.
	ErrRollbackFailed = errors.New("rollback failed")
)

// Options configure Remediate.
type Options struct {
	Host    string
	Runner  Runner
	Request Request
	// Prober are this machine's addresses as the probe saw them.
	Prober []netip.Addr
	// MaxPrefixV4 and MaxPrefixV6 are the widest allow entries accepted
	// without Request.Force (defaults /8 and /32).
	MaxPrefixV4, MaxPrefixV6 int
	DryRun                   bool
	// Yes applies without asking. Without it Confirm is called; a nil
	// Confirm (no terminal) refuses to apply.
	Yes     bool
	Confirm func(p *Plan) (bool, error)
	// BackupPath is where the backup is written (0600, synced) before the
	// first change. Required unless DryRun.
	BackupPath     string
	NoAutoRollback bool
	// HostOptions carries --dc to the driver.
	HostOptions
	// OSUser, WinRMUser and Ticket go into the change record.
	OSUser, WinRMUser, Ticket string
	// Endpoints and MailDomain are recorded in the backup (see Backup).
	Endpoints  []string
	MailDomain string
	// RollbackCommand is the command printed when the host may be left
	// partly changed (default: a minimal relaylock rollback).
	RollbackCommand string
	// Step is called after each step; an error from it stops the run
	// before the next change (it is how the caller saves evidence, e.g.
	// the backup before anything is applied).
	Step func(step Step, o *Outcome) error
	Now  func() time.Time
}

// Step names a point of a remediation run at which Options.Step is
// called. The values are also the step names of the evidence log.
type Step string

const (
	// StepPlan: the plan is made (and confirmed); nothing has changed.
	StepPlan Step = "plan"
	// StepBackup: the backup is written and synced; nothing has changed.
	StepBackup Step = "backup"
	// StepApply: the plan's changes are applied (Outcome.Change).
	StepApply Step = "apply"
	// StepReadback: the settings were read back and match the plan
	// (Outcome.After).
	StepReadback Step = "readback"
	// StepRollback: the change failed and was rolled back.
	StepRollback Step = "rollback"
	// StepFailed: the change failed and is not rolled back: automatic
	// rollback is off, or the rollback itself failed (ResultPartial).
	StepFailed Step = "failed"
	// StepPending: the change (or its rollback) is written but not yet in
	// effect (DS2MB); it is not rolled back, which would race the copy.
	StepPending Step = "pending"
)

// Outcome is everything a remediation run did, for evidence and output.
type Outcome struct {
	Before       *Inspection   `json:"before"`
	Plan         *Plan         `json:"plan"`
	Backup       *Backup       `json:"backup,omitempty"`
	BackupFile   string        `json:"backup_file,omitempty"`
	BackupSHA256 string        `json:"backup_sha256,omitempty"`
	After        *Inspection   `json:"after,omitempty"`
	Change       *ChangeRecord `json:"change,omitempty"`
	// NoChange is set when the host already matched the request.
	NoChange bool `json:"no_change,omitempty"`
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now().UTC()
	}
	return time.Now().UTC()
}

func (o Options) step(name Step, out *Outcome) error {
	if o.Step == nil {
		return nil
	}
	if err := o.Step(name, out); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Remediate restricts relaying on one host: fresh read, plan, confirm,
// backup (synced before any change), apply, read back and compare, and
// roll back what was applied when anything fails. It does not re-test:
// the caller probes from outside afterwards.
func Remediate(ctx context.Context, o Options) (*Outcome, error) {
	maxV4, maxV6 := o.MaxPrefixV4, o.MaxPrefixV6
	if maxV4 == 0 {
		maxV4 = 8
	}
	if maxV6 == 0 {
		maxV6 = 32
	}
	if err := CheckAllowList(o.Request.Allow, maxV4, maxV6, o.Request.Force); err != nil {
		return nil, err
	}
	if !o.DryRun && o.BackupPath == "" {
		return nil, errors.New("no backup path: refusing to change a host without a backup")
	}
	out := &Outcome{}
	before, err := InspectHostWith(ctx, o.Runner, o.Host, o.Prober, o.HostOptions)
	if err != nil {
		return nil, err
	}
	out.Before = before
	// One domain controller for the whole run (Exchange 2007+): the
	// read-back and any rollback see what the write wrote.
	ctx = pinFrom(ctx, before)
	d, err := driverWith(before.Platform, o.HostOptions)
	if err != nil {
		return out, err
	}
	plan, err := d.Plan(before, o.Request)
	if err != nil {
		return out, fmt.Errorf("plan for %s: %w", o.Host, err)
	}
	plan.Host, plan.Platform = o.Host, before.Platform
	out.Plan = plan
	if len(plan.Changes) == 0 {
		out.NoChange = true
		return out, o.step(StepPlan, out)
	}
	if err := o.step(StepPlan, out); err != nil {
		return out, err
	}
	if o.DryRun {
		return out, nil
	}
	if !o.Yes {
		if o.Confirm == nil {
			return out, withKind(fmt.Errorf("%w: stdin is not a terminal, and the change was not confirmed in advance", ErrNotConfirmed), ErrNoConfirmer)
		}
		ok, err := o.Confirm(plan)
		if err != nil {
			return out, fmt.Errorf("confirm: %w", err)
		}
		if !ok {
			return out, fmt.Errorf("%w: nothing was changed", ErrNotConfirmed)
		}
	}

	// Backup first, synced to disk, and recorded by the caller, before
	// the first change.
	b := &Backup{Schema: BackupSchema, Tool: "relaylock", Host: o.Host, Platform: before.Platform,
		Taken: o.now(), Inspection: before, Plan: plan, Endpoints: o.Endpoints, MailDomain: o.MailDomain}
	sum, err := WriteBackup(o.BackupPath, b)
	if err != nil {
		return out, err
	}
	out.Backup, out.BackupFile, out.BackupSHA256 = b, o.BackupPath, sum
	if err := o.step(StepBackup, out); err != nil {
		return out, err
	}

	rec := &ChangeRecord{
		ID: changeID(o.Host, o.now()), Kind: ChangeRemediate, Host: o.Host, Platform: before.Platform, Inspection: before.Ref(),
		OSUser: o.OSUser, WinRMUser: o.WinRMUser, Ticket: o.Ticket, Start: o.now(),
		Before: touched(before.Settings, plan.Changes), Planned: plan.Changes,
		BackupFile: o.BackupPath, BackupSHA256: sum,
	}
	out.Change = rec
	// From here on every script run is part of the change's record.
	o.Runner = &changeRunner{r: o.Runner, rec: rec}
	applied, aerr := d.Apply(ctx, o.Runner, plan)
	rec.Applied = applied
	if errors.Is(aerr, ErrPending) {
		return out, o.pending(ctx, rec, out, aerr)
	}
	if aerr != nil {
		rec.Error = aerr.Error()
		return out, o.fail(ctx, d, b, rec, out, fmt.Errorf("apply on %s: %w", o.Host, aerr))
	}
	if err := o.step(StepApply, out); err != nil {
		return out, err
	}

	after, err := InspectHostWith(ctx, o.Runner, o.Host, o.Prober, o.HostOptions)
	if err != nil {
		rec.Error = err.Error()
		return out, o.fail(ctx, d, b, rec, out, fmt.Errorf("read back %s: %w", o.Host, err))
	}
	out.After = after
	rec.After = touched(after.Settings, plan.Changes)
	if mm := Compare(plan.Changes, after.Settings); len(mm) > 0 {
		rec.Mismatches = mm
		rec.Error = "read-back mismatch"
		return out, o.fail(ctx, d, b, rec, out, fmt.Errorf("%w on %s: %s", ErrReadBack, o.Host, strings.Join(mm, "; ")))
	}
	rec.Result = ResultApplied
	rec.End = o.now()
	return out, o.step(StepReadback, out)
}

// pending records a change that was applied where it is made (Exchange
// 2000/2003: Active Directory) but has not reached the place it takes
// effect (the metabase, copied by DS2MB) within the wait. It does not roll
// back: the rollback would race the copy DS2MB is about to make. The
// settings as they are now are read back for the evidence, not compared.
func (o Options) pending(ctx context.Context, rec *ChangeRecord, out *Outcome, cause error) error {
	rec.Result = ResultPending
	rec.Error = cause.Error()
	if after, err := InspectHostWith(ctx, o.Runner, o.Host, o.Prober, o.HostOptions); err == nil {
		out.After = after
		rec.After = touched(after.Settings, rec.Planned)
	}
	rec.End = o.now()
	_ = o.step(StepPending, out)
	rollbackCmd := fmt.Sprintf("relaylock rollback --winrm-host %s --backup %s", o.Host, o.BackupPath)
	if o.RollbackCommand != "" {
		rollbackCmd = o.RollbackCommand // with every flag this run used
	}
	return fmt.Errorf("apply on %s: %w\nthe backup is %s; to undo the change instead of waiting, run:\n  %s",
		o.Host, cause, o.BackupPath, rollbackCmd)
}

// fail rolls back after a failed apply or read-back (unless disabled) and
// returns an error that says exactly what state the host may be in.
func (o Options) fail(ctx context.Context, d Driver, b *Backup, rec *ChangeRecord, out *Outcome, cause error) error {
	defer func() { rec.End = o.now() }()
	rollbackCmd := fmt.Sprintf("relaylock rollback --winrm-host %s --backup %s", o.Host, o.BackupPath)
	if o.RollbackCommand != "" {
		rollbackCmd = o.RollbackCommand
	}
	if o.NoAutoRollback {
		rec.Result = ResultFailed
		_ = o.step(StepFailed, out)
		return fmt.Errorf("%w\nthe host may be partly changed (%s); automatic rollback is off; to restore the saved state run:\n  %s",
			cause, describeApplied(rec), rollbackCmd)
	}
	// Roll back even if ctx was cancelled: leaving a half change is
	// worse than a few more seconds.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	if err := d.Restore(rctx, o.Runner, b); errors.Is(err, ErrPending) {
		rec.Result = ResultPending
		rec.Error += "; rollback: " + err.Error()
		_ = o.step(StepPending, out)
		return fmt.Errorf("%w; the rollback was written but is %w", cause, err)
	} else if err != nil {
		rec.Result = ResultPartial
		rec.Error += "; rollback: " + err.Error()
		_ = o.step(StepFailed, out)
		return fmt.Errorf("%w; %w: %v\nthe host may be partly changed (%s); when it is reachable again run:\n  %s",
			cause, ErrRollbackFailed, err, describeApplied(rec), rollbackCmd)
	}
	rec.Result = ResultRolledBack
	_ = o.step(StepRollback, out)
	return fmt.Errorf("%w; %w: the host is back in its prior state (backup %s)", cause, ErrRolledBack, o.BackupPath)
}

func describeApplied(rec *ChangeRecord) string {
	if len(rec.Applied) == 0 {
		return "no change is known to have been applied, but the connection failed during the change"
	}
	var s []string
	for _, c := range rec.Applied {
		s = append(s, c.Object+" "+c.Setting)
	}
	return "applied: " + strings.Join(s, ", ")
}

// Compare checks settings read back against planned changes and returns
// one message per mismatch.
func Compare(changes []Change, got []Setting) []string {
	idx := map[[2]string]string{}
	for _, s := range got {
		idx[[2]string{s.Object, s.Name}] = s.Value
	}
	var mm []string
	for _, c := range changes {
		v, ok := idx[[2]string{c.Object, c.Setting}]
		if !ok {
			v = ValueAbsent
		}
		if v != c.New {
			mm = append(mm, fmt.Sprintf("%s %s is %q, planned %q", c.Object, c.Setting, v, c.New))
		}
	}
	return mm
}

// touched returns the rows of settings that the changes touch, with
// ValueAbsent rows for objects that do not exist.
func touched(settings []Setting, changes []Change) []Setting {
	idx := map[[2]string]string{}
	for _, s := range settings {
		idx[[2]string{s.Object, s.Name}] = s.Value
	}
	var out []Setting
	for _, c := range changes {
		v, ok := idx[[2]string{c.Object, c.Setting}]
		if !ok {
			v = ValueAbsent
		}
		out = append(out, Setting{Object: c.Object, Name: c.Setting, Value: v})
	}
	return out
}

func changeID(host string, t time.Time) string {
	h := sha256.Sum256([]byte(host + t.Format(time.RFC3339Nano)))
	return "CHG-" + t.Format("20060102T150405Z") + "-" + hex.EncodeToString(h[:3])
}

// WriteBackup writes b atomically with mode 0600 and returns its SHA-256.
// The file is synced before WriteBackup returns. It never replaces
// anything: when path exists the error wraps fs.ErrExist and nothing is
// written (a backup lost to a second run would make its rollback
// impossible).
func WriteBackup(path string, b *Backup) (string, error) {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode backup: %w", err)
	}
	data = append(data, '\n')
	if err := atomicfile.CreateFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("write backup: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// LoadBackup reads a backup file and checks its schema.
func LoadBackup(path string) (*Backup, string, error) {
	data, err := atomicfile.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read backup: %w", err)
	}
	var b Backup
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, "", fmt.Errorf("backup %s is not valid JSON: %w", path, err)
	}
	if b.Schema != BackupSchema {
		return nil, "", fmt.Errorf("backup %s has schema %q, want %q", path, b.Schema, BackupSchema)
	}
	if b.Inspection == nil || b.Plan == nil {
		return nil, "", fmt.Errorf("backup %s is incomplete: no prior state or plan", path)
	}
	sum := sha256.Sum256(data)
	return &b, hex.EncodeToString(sum[:]), nil
}

// RollbackOptions configure Rollback.
type RollbackOptions struct {
	Host                      string
	Runner                    Runner
	Backup                    *Backup
	BackupFile, BackupSHA256  string
	Prober                    []netip.Addr
	OSUser, WinRMUser, Ticket string
	Now                       func() time.Time
	// HostOptions carries --dc to the driver.
	HostOptions
}

// Rollback restores exactly the state saved in a backup, reads it back and
// compares every setting the plan had touched with its saved value.
func Rollback(ctx context.Context, o RollbackOptions) (*ChangeRecord, *Inspection, error) {
	now := func() time.Time {
		if o.Now != nil {
			return o.Now().UTC()
		}
		return time.Now().UTC()
	}
	b := o.Backup
	d, err := driverWith(b.Platform, o.HostOptions)
	if err != nil {
		return nil, nil, err
	}
	cur, err := InspectHostWith(ctx, o.Runner, o.Host, o.Prober, o.HostOptions)
	if err != nil {
		return nil, nil, err
	}
	ctx = pinFrom(ctx, cur)
	if cur.Platform != b.Platform {
		return nil, cur, fmt.Errorf("backup is for a %s host, but %s is %s: refusing to restore", b.Platform, o.Host, cur.Platform)
	}
	if b.Inspection.HostInfo.ComputerName != "" && !strings.EqualFold(cur.HostInfo.ComputerName, b.Inspection.HostInfo.ComputerName) {
		return nil, cur, fmt.Errorf("backup was taken on %s, but %s is %s: refusing to restore", b.Inspection.HostInfo.ComputerName, o.Host, cur.HostInfo.ComputerName)
	}
	// The "changes" of a rollback are the plan's changes reversed.
	var want []Change
	prior := map[[2]string]string{}
	for _, s := range b.Inspection.Settings {
		prior[[2]string{s.Object, s.Name}] = s.Value
	}
	for _, c := range b.Plan.Changes {
		v, ok := prior[[2]string{c.Object, c.Setting}]
		if !ok {
			v = ValueAbsent
		}
		want = append(want, Change{Object: c.Object, Setting: c.Setting, Current: c.New, New: v, Why: "restore the state saved in the backup"})
	}
	rec := &ChangeRecord{ID: changeID(o.Host, now()), Kind: ChangeRollback, Host: o.Host, Platform: b.Platform, Inspection: b.Inspection.Ref(),
		OSUser: o.OSUser, WinRMUser: o.WinRMUser, Ticket: o.Ticket, Start: now(),
		Before: touched(cur.Settings, want), Planned: want, BackupFile: o.BackupFile, BackupSHA256: o.BackupSHA256}
	for _, run := range cur.Runs {
		rec.addRun(run)
	}
	o.Runner = &changeRunner{r: o.Runner, rec: rec}
	if err := d.Restore(ctx, o.Runner, b); err != nil {
		rec.Result, rec.Error, rec.End = ResultFailed, err.Error(), now()
		if ctx.Err() != nil && !errors.Is(err, ErrPending) {
			// Ctrl-C with a write on the host: it may have run. The
			// rollback writes the saved state whatever the host has, so
			// running it again is safe.
			rec.Result = ResultInterrupted
			return rec, cur, fmt.Errorf("restore %s: %w\nthe host may or may not have the saved values now (a write was on its way); "+
				"run the same rollback again, which writes the saved state whatever the host has, or see what it has with relaylock inspect --winrm-host %s",
				o.Host, err, o.Host)
		}
		if errors.Is(err, ErrPending) {
			// Written where it is made; not yet where it takes effect.
			rec.Result, rec.Applied = ResultPending, want
			if after, aerr := InspectHostWith(ctx, o.Runner, o.Host, o.Prober, o.HostOptions); aerr == nil {
				rec.After = touched(after.Settings, want)
				return rec, after, fmt.Errorf("restore %s: %w", o.Host, err)
			}
		}
		return rec, cur, fmt.Errorf("restore %s: %w", o.Host, err)
	}
	after, err := InspectHostWith(ctx, o.Runner, o.Host, o.Prober, o.HostOptions)
	if err != nil {
		rec.Result, rec.Error, rec.End = ResultFailed, err.Error(), now()
		return rec, nil, fmt.Errorf("read back %s after restore: %w", o.Host, err)
	}
	rec.After = touched(after.Settings, want)
	rec.Applied = want
	rec.End = now()
	if mm := Compare(want, after.Settings); len(mm) > 0 {
		rec.Result, rec.Mismatches = ResultFailed, mm
		return rec, after, fmt.Errorf("%w after restore on %s: %s", ErrReadBack, o.Host, strings.Join(mm, "; "))
	}
	rec.Result = ResultRestored
	return rec, after, nil
}

// FormatPlan renders a plan as a readable diff.
func FormatPlan(p *Plan) string {
	var b strings.Builder
	if len(p.Changes) == 0 {
		fmt.Fprintf(&b, "%s (%s): no change needed; relaying is already restricted as requested\n", p.Host, p.Platform)
	} else {
		fmt.Fprintf(&b, "Plan for %s (%s): %d change(s)\n", p.Host, p.Platform, len(p.Changes))
		for i, c := range p.Changes {
			fmt.Fprintf(&b, "\n%2d. %s\n    %s\n    - %s\n    + %s\n    why: %s\n", i+1, c.Object, c.Setting,
				oneLine(c.Current), oneLine(c.New), c.Why)
		}
	}
	if len(p.Created) > 0 {
		fmt.Fprintf(&b, "\ncreates: %s (rollback deletes it)\n", strings.Join(p.Created, ", "))
	}
	if len(p.Notes) > 0 {
		b.WriteString("\nnot changed (reported only):\n")
		notes := append([]string(nil), p.Notes...)
		sort.Strings(notes)
		for _, n := range notes {
			fmt.Fprintf(&b, "  * %s\n", n)
		}
	}
	return b.String()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r\n", ", ")
	s = strings.ReplaceAll(s, "\n", ", ")
	if s == "" {
		return "(empty)"
	}
	return s
}

// MailService names the service that applies relay settings on a host:
// SMTPSVC for IIS SMTP and Exchange 2000/2003, the Front End Transport
// service where it exists (2013+), else the Transport service.
func MailService(h HostInfo) string {
	has := func(name string) bool {
		for _, s := range h.Services {
			if s.Name == name && s.Present {
				return true
			}
		}
		return false
	}
	switch h.Platform {
	case PlatformIIS, PlatformExchange2003:
		return "SMTPSVC"
	case PlatformExchange:
		if has("MSExchangeFrontEndTransport") {
			return "MSExchangeFrontEndTransport"
		}
		return "MSExchangeTransport"
	}
	return ""
}

// changeRunner records every script run of a change in its record (the
// run as evidence; a run that never started, nil, is not recorded).
type changeRunner struct {
	r   Runner
	mu  sync.Mutex
	rec *ChangeRecord
}

func (c *changeRunner) Run(ctx context.Context, script string, params map[string]string) (*ScriptRun, error) {
	run, err := c.r.Run(ctx, script, params)
	if run != nil {
		c.mu.Lock()
		c.rec.addRun(*run)
		c.mu.Unlock()
	}
	return run, err
}

// addRun appends a run and its hash, with secret parameters dropped or
// redacted (runParams).
func (rec *ChangeRecord) addRun(run ScriptRun) {
	run.Params = runParams(run.Params)
	run.Output = nil
	rec.Runs = append(rec.Runs, run)
	rec.Scripts = append(rec.Scripts, run.SHA256)
}

// reSecretParam matches parameter names that may carry a secret.
var reSecretParam = regexp.MustCompile(`(?i)pass|secret|credential|token|pwd`)

// Redacted replaces a secret parameter's value in evidence.
const Redacted = "(redacted)"

// redactParams returns a copy of params in which every value whose name
// looks like a secret (password, secret, credential, token) is Redacted.
// Runners never put secrets into params; this holds even if one did.
func redactParams(params map[string]string) map[string]string {
	if len(params) == 0 {
		return params
	}
	out := make(map[string]string, len(params))
	for k, v := range params {
		if reSecretParam.MatchString(k) && v != "" {
			v = Redacted
		}
		out[k] = v
	}
	return out
}
