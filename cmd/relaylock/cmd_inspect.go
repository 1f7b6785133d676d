package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/internal/engagement"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

func inspectCommand(e *env) *cli.Command {
	flags := append(winrmFlags(), evidenceFlags()...)
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
			host := c.String("winrm-host")
			if host == "" {
				return usagef("inspect: --winrm-host is required")
			}
			format := c.String("format")
			if format != "text" && format != "json" {
				return usagef("--format must be text or json")
			}
			prober, err := parseProbers(c.StringSlice("prober"))
			if err != nil {
				return err
			}
			ho, err := hostOptions(c)
			if err != nil {
				return err
			}
			if len(prober) == 0 {
				prober = proberAddrs(lastAudit(c.String("evidence")))
			}
			runner, user, err := openRunner(c, e, host)
			if err != nil {
				return err
			}
			defer closeRunner(runner)
			rec := newRecorder(c, e, []string{host})
			insp, ierr := remediate.InspectHostWith(c.Context, runner, host, prober, ho)
			var evErr error // printed after the result
			if insp != nil {
				evErr = rec.Update(func(b *evidence.Bundle) {
					b.Inspections = append(b.Inspections, *insp)
					rec.Log(b, "inspect", host, fmt.Sprintf("inspected %s as %s (WinRM user %s): %d finding(s)", host, insp.Platform, user, len(insp.Findings)))
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
				return engagement.EvidenceWriteFailed(e.Stderr, openFinding(insp), evErr)
			}
			if openFinding(insp) {
				return withCode(exitOpen, nil)
			}
			return nil
		},
	}
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
				return nil, usagef("--prober %q is not an IP address", f)
			}
			out = append(out, a.Unmap())
		}
	}
	return out, nil
}

// openRunner builds the WinRM runner from the flags, printing warnings.
func openRunner(c *cli.Context, e *env, host string) (remediate.Runner, string, error) {
	cfg, warnings, err := winrmConfigFrom(c, e, host)
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
	w = printableLines{W: w} // everything here comes from the host
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
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  OBJECT\tSETTING\tVALUE")
	for _, s := range insp.Settings {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Object, s.Name, oneLineValue(s.Value))
	}
	tw.Flush()
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
