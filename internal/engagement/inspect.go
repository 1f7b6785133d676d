package engagement

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// InspectOptions are the settings of an inspection.
type InspectOptions struct {
	WinRM WinRMOptions
	// Probers are the addresses the external probe came from, as given
	// (repeatable, comma-separated); none: those of the last audit in the
	// evidence.
	Probers []string
	// Format is text or json.
	Format string
	// DC is the domain controller of an Exchange 2000/2003 host.
	DC       string
	Evidence EvidenceOptions
}

// readCommandArgs checks what the read-only host commands (inspect,
// doctor) need: a WinRM host, and an output format of text or json.
func readCommandArgs(cmd, host, format string) error {
	if host == "" {
		return Usagef("%s: --winrm-host is required", cmd)
	}
	if format != "text" && format != "json" {
		return Usagef("--format must be text or json")
	}
	return nil
}

// Inspect reads a Windows mail host's relay settings over WinRM, names
// the root cause, prints it and adds it to the evidence. A high-severity
// finding exits with ExitOpen.
func Inspect(ctx context.Context, e *Env, o InspectOptions) error {
	host, format := o.WinRM.Host, o.Format
	if err := readCommandArgs("inspect", host, format); err != nil {
		return err
	}
	prober, err := parseProbers(o.Probers)
	if err != nil {
		return err
	}
	ho, err := hostOptions(o.DC)
	if err != nil {
		return err
	}
	if len(prober) == 0 {
		prober = proberAddrs(lastAudit(o.Evidence.Path))
	}
	ho.Warn = func(w string) { // before the Exchange shell loads, as the README says
		fmt.Fprintf(e.Stderr, "relaylock: warning: %s\n", audit.Printable(w))
	}
	runner, user, err := openRunner(e, o.WinRM, host)
	if err != nil {
		return err
	}
	defer closeRunner(runner)
	rec := newRecorder(ctx, e, o.Evidence, []string{host})
	insp, ierr := remediate.InspectHostWith(ctx, runner, host, prober, ho)
	var evErr error // printed after the result
	if insp != nil {
		evErr = rec.update(func(b *evidence.Bundle) {
			b.AddInspection(*insp)
			rec.log(b, "inspect", host, fmt.Sprintf("inspected %s as %s (WinRM user %s): %d finding(s)", host, insp.Platform, user, len(insp.Findings)))
		})
	}
	if ierr != nil && evErr != nil {
		fmt.Fprintf(e.Stderr, "relaylock: the inspection is NOT in the evidence file: %v\n", evErr)
	}
	if ierr != nil {
		return ierr
	}
	if format == "json" {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(insp); err != nil {
			return err
		}
	} else {
		writeInspection(e.Stdout, insp)
	}
	if evErr != nil {
		return evidenceWriteFailed(e.Stderr, openFinding(insp), evErr)
	}
	if openFinding(insp) {
		return WithCode(ExitOpen, nil)
	}
	return nil
}

var reDC = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,254}$`)

// hostOptions checks the domain controller's name.
func hostOptions(dc string) (remediate.HostOptions, error) {
	if dc != "" && !reDC.MatchString(dc) {
		return remediate.HostOptions{}, Usagef("--dc %q is not a host name (letters, digits, dots and hyphens)", dc)
	}
	return remediate.HostOptions{DC: dc}, nil
}

func parseProbers(ss []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range ss {
		for _, f := range strings.Split(s, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, Usagef("--prober %q is not an IP address", f)
			}
			out = append(out, a.Unmap())
		}
	}
	return out, nil
}

// openRunner opens the WinRM runner for host, printing warnings.
func openRunner(e *Env, w WinRMOptions, host string) (remediate.Runner, string, error) {
	cfg, warnings, err := w.Config(e, host)
	if err != nil {
		return nil, "", err
	}
	cfg.Dial = e.WinRMDial
	r, w2, err := remediate.NewWinRMRunner(cfg)
	for _, w := range append(warnings, w2...) {
		fmt.Fprintf(e.Stderr, "relaylock: warning: %s\n", audit.Printable(w))
	}
	if err != nil {
		return nil, "", err
	}
	return r, cfg.User, nil
}

// closeRunner drops the runner's idle, authenticated connections.
func closeRunner(r remediate.Runner) {
	if c, ok := r.(interface{ Close() error }); ok {
		c.Close()
	}
}

// openFinding reports whether a finding makes the host relay for strangers.
func openFinding(insp *remediate.Inspection) bool {
	for _, f := range insp.Findings {
		if f.Severity == remediate.SeverityHigh {
			return true
		}
	}
	return false
}

func writeInspection(w io.Writer, insp *remediate.Inspection) {
	w = PrintableLines{W: w} // everything here comes from the host
	hi := insp.HostInfo
	fmt.Fprintf(w, "Host:      %s (%s)\n", insp.Host, hi.ComputerName)
	fmt.Fprintf(w, "Platform:  %s", insp.Platform)
	if hi.ExchangeVersion != "" {
		fmt.Fprintf(w, " (Exchange %s, build %s)", hi.ExchangeVersion, hi.ExchangeBuild)
	}
	fmt.Fprintf(w, "\nOS:        %s %s, PowerShell %s\n", hi.OSCaption, hi.OSVersion, hi.PSVersion)
	if len(insp.Prober) > 0 {
		fmt.Fprintf(w, "Prober:    %s\n", strings.Join(insp.Prober, ", "))
	}
	for _, wn := range insp.Warnings {
		fmt.Fprintf(w, "Warning:   %s\n", wn)
	}
	fmt.Fprintln(w, "\nRelay settings:")
	writeSettings(w, insp.Settings)
	fs := append([]remediate.Finding(nil), insp.Findings...)
	sort.SliceStable(fs, func(i, j int) bool { return sevRank(fs[i].Severity) < sevRank(fs[j].Severity) })
	if len(fs) == 0 {
		fmt.Fprintln(w, "\nFindings: none: relaying is restricted")
		return
	}
	fmt.Fprintf(w, "\nFindings (%d):\n", len(fs))
	for _, f := range fs {
		explains := ""
		if f.Explains {
			explains = "  [explains what the probe saw]"
		}
		fmt.Fprintf(w, "\n  %s  %s  %s%s\n", strings.ToUpper(string(f.Severity)), f.ID, f.Title, explains)
		fmt.Fprintf(w, "    setting: %s %s = %s\n", f.Object, f.Setting, oneLineValue(f.Value))
		if f.Detail != "" {
			fmt.Fprintf(w, "    why:     %s\n", f.Detail)
		}
		if f.Remediation != "" {
			fmt.Fprintf(w, "    fix:     %s\n", f.Remediation)
		}
	}
}

func sevRank(s remediate.Severity) int {
	switch s {
	case remediate.SeverityHigh:
		return 0
	case remediate.SeverityMedium:
		return 1
	case remediate.SeverityLow:
		return 2
	}
	return 3
}

func oneLineValue(v string) string {
	v = strings.ReplaceAll(strings.ReplaceAll(v, "\r\n", ", "), "\n", ", ")
	if v == "" {
		return "(empty)"
	}
	return audit.Printable(v)
}

// wideObject is the length of an object name over which the settings are
// grouped by object rather than tabled (an Exchange 2000/2003 virtual
// server's DN is ~180 characters, a metabase path ~10).
const wideObject = 40

// writeSettings prints settings as a table of object, setting and value;
// when an object's name is too long for a terminal table, each object
// heads its own group instead, in full (the evidence keeps the settings
// as read).
func writeSettings(w io.Writer, settings []remediate.Setting) {
	wide := false
	for _, s := range settings {
		wide = wide || len(s.Object) > wideObject
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	if !wide {
		fmt.Fprintln(tw, "  OBJECT\tSETTING\tVALUE")
		for _, s := range settings {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Object, s.Name, oneLineValue(s.Value))
		}
		return
	}
	for i, s := range settings {
		if i == 0 || s.Object != settings[i-1].Object {
			fmt.Fprintf(tw, "  %s\n", s.Object)
		}
		fmt.Fprintf(tw, "    %s\t%s\n", s.Name, oneLineValue(s.Value))
	}
}
