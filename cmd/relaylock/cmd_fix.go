package main

import (
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/report"
)

func fixCommand(e *env) *cli.Command {
	flags := append(winrmFlags(), remediateFlags()...)
	flags = append(flags, evidenceFlags()...)
	flags = append(flags, retestFlags()...)
	flags = append(flags,
		&cli.StringSliceFlag{Name: "winrm-map", Usage: "`MX=HOST[:PORT]`: reach mail host MX over WinRM at HOST (repeatable; default: the MX host name itself)"},
		&cli.StringFlag{Name: "o", Aliases: []string{"report"}, Usage: "write the PDF report to `FILE` (default: beside the evidence)"},
		&cli.StringFlag{Name: "sign-key", Usage: "sign the evidence and report hashes with this Ed25519 private key `FILE` (see relaylock keygen)"},
	)
	// fix takes the MX=HOST mapping on --winrm-host, as the issue and the
	// README show; the plain host form of the other commands makes no
	// sense for several hosts.
	for i, f := range flags {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Name == "winrm-host" {
			flags[i] = &cli.StringSliceFlag{Name: "winrm-host", Usage: "`MX=HOST[:PORT]`: reach mail host MX over WinRM at HOST (repeatable; default: the MX host name itself)"}
		}
	}
	return &cli.Command{
		Name:  "fix",
		Usage: "the whole job: audit a domain, inspect and remediate each open Windows host, re-test, write the evidence and the PDF report",
		UsageText: "relaylock fix DOMAIN --allow 192.0.2.10 [--winrm-host MX=HOST ...] [--evidence FILE] [-o report.pdf] [--yes]\n\n" +
			"Exit codes: 0 no open relay left, 3 open and nothing applied, 4 applied but still open on re-test, 1 error, 2 usage.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("fix takes exactly one DOMAIN")
			}
			domain := c.Args().First()
			req, err := requestFrom(c)
			if err != nil {
				return err
			}
			mapping, err := parseWinRMMap(append(c.StringSlice("winrm-host"), c.StringSlice("winrm-map")...))
			if err != nil {
				return err
			}
			stamp := time.Now().UTC().Format("20060102T150405Z")
			evPath := c.String("evidence")
			if evPath == "" {
				evPath = fmt.Sprintf("relaylock-evidence-%s-%s.json", safeName(domain), stamp)
				if err := c.Set("evidence", evPath); err != nil {
					return err
				}
			}
			pdfPath := c.String("o")
			if pdfPath == "" {
				pdfPath = filepath.Join(filepath.Dir(evPath), fmt.Sprintf("relaylock-report-%s-%s.pdf", safeName(domain), stamp))
			}
			// Re-tests probe the open hosts' addresses directly; tell the
			// probe which mail domain they serve, for the controls.
			if c.String("mail-domain") == "" {
				if err := c.Set("mail-domain", domain); err != nil {
					return err
				}
			}
			fx, err := newFixer(c, e)
			if err != nil {
				return err
			}
			fx.rec.engagement.Scope = []string{domain}

			fx.progress("step 1/5: auditing %s from outside", domain)
			before, err := fx.probe(c.Context, []string{domain}, "audit", "")
			if err != nil {
				return fmt.Errorf("audit %s: %w", domain, err)
			}
			hosts := openHosts(before)
			if len(hosts) == 0 {
				fx.progress("%s: no open relay found (%s)", domain, before.Verdict)
			}
			var results []*hostResult
			var firstErr error
			// A mapping's :PORT applies to its host only; the others use
			// --winrm-port (or its default).
			defaultPort := strconv.Itoa(c.Int("winrm-port"))
			for i, h := range hosts {
				target := h.mx
				if m, ok := mapping[strings.ToLower(strings.TrimSuffix(h.mx, "."))]; ok {
					target = m
				}
				winrmHost, port := target, 0
				if hh, pp, err := net.SplitHostPort(target); err == nil {
					winrmHost = hh
					port, _ = strconv.Atoi(pp)
				}
				fx.progress("step 2/5: host %d of %d: %s is open (%s); inspecting %s over WinRM", i+1, len(hosts), h.mx, strings.Join(h.triggers, ", "), target)
				p := defaultPort
				if port != 0 {
					p = strconv.Itoa(port)
				}
				if err := c.Set("winrm-port", p); err != nil {
					return err
				}
				res, err := fx.fixHost(c.Context, winrmHost, h.targets, req, before)
				results = append(results, res)
				if err != nil {
					fmt.Fprintf(e.Stderr, "relaylock: %s: %v\n", h.mx, err)
					if firstErr == nil {
						firstErr = err
					}
					if c.Context.Err() != nil {
						break
					}
				}
			}

			fx.progress("step 5/5: writing the report %s", pdfPath)
			if err := writeReport(c, fx, evPath, pdfPath); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "\nSummary for %s:\n", domain)
			if len(hosts) == 0 {
				fmt.Fprintf(e.Stdout, "  no open relay found: %s\n", before.Verdict)
			}
			stillOpen, applied := false, false
			for _, r := range results {
				fmt.Fprintf(e.Stdout, "  %s\n", r.summary())
				stillOpen = stillOpen || r.stillOpen || (r.after == nil && !r.applied)
				applied = applied || r.applied
			}
			fmt.Fprintf(e.Stdout, "Evidence: %s\nReport:   %s\n", evPath, pdfPath)
			if firstErr != nil {
				return firstErr
			}
			switch {
			case stillOpen && applied:
				return withCode(exitStillOpen, nil)
			case stillOpen || (len(hosts) > 0 && !applied && anyOpen(results)):
				return withCode(exitOpen, nil)
			}
			if len(hosts) == 0 {
				return verdictExit(before)
			}
			for _, r := range results {
				if err := r.exitErr(); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func anyOpen(rs []*hostResult) bool {
	for _, r := range rs {
		if r.after == nil || r.after.Verdict == audit.VerdictOpen {
			return true
		}
	}
	return false
}

func (h *hostResult) summary() string {
	before := "not probed"
	if h.before != nil {
		before = string(h.before.Verdict)
	}
	after := "not re-tested"
	if h.after != nil {
		after = string(h.after.Verdict)
	}
	var did string
	switch {
	case h.out == nil:
		did = "not remediated"
	case h.out.NoChange:
		did = "no change needed"
	case h.applied:
		did = fmt.Sprintf("%d change(s) applied, backup %s", len(h.out.Change.Applied), h.out.BackupFile)
	default:
		did = "nothing applied"
	}
	return fmt.Sprintf("%s: before %s; %s; after %s", h.host, before, did, after)
}

// openHost is an MX host with at least one open endpoint.
type openHost struct {
	mx       string
	targets  []string // "address:port" of every endpoint of this host
	triggers []string
}

func openHosts(r *audit.Result) []openHost {
	byMX := map[string]*openHost{}
	var order []string
	for _, t := range r.Targets {
		for _, ep := range t.Endpoints {
			key := strings.ToLower(strings.TrimSuffix(ep.MXHost, "."))
			if key == "" {
				key = ep.Address
			}
			h, ok := byMX[key]
			if !ok {
				h = &openHost{mx: key}
				byMX[key] = h
				order = append(order, key)
			}
			tgt := net.JoinHostPort(ep.Address, strconv.Itoa(ep.Port))
			if !contains(h.targets, tgt) {
				h.targets = append(h.targets, tgt)
			}
			if ep.Verdict == audit.VerdictOpen {
				for _, id := range ep.Triggers {
					if !contains(h.triggers, id) {
						h.triggers = append(h.triggers, id)
					}
				}
			}
		}
	}
	var out []openHost
	for _, k := range order {
		if len(byMX[k].triggers) > 0 {
			out = append(out, *byMX[k])
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].mx < out[j].mx })
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func parseWinRMMap(ss []string) (map[string]string, error) {
	m := map[string]string{}
	for _, s := range ss {
		for _, f := range strings.Split(s, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			mx, host, ok := strings.Cut(f, "=")
			if !ok || mx == "" || host == "" {
				return nil, usagef("--winrm-host %q: want MX=HOST[:PORT]", f)
			}
			m[strings.ToLower(strings.TrimSuffix(mx, "."))] = host
		}
	}
	return m, nil
}

// writeReport renders the PDF from the evidence through the report
// command's path: recorded as an artifact, signed when a key is given.
func writeReport(c *cli.Context, fx *fixer, evPath, pdfPath string) error {
	o := reportOptions{Evidence: evPath, Output: pdfPath, SignKey: c.String("sign-key"),
		Render: report.Options{Client: c.String("client")}}
	if err := o.validate(); err != nil {
		return err
	}
	return runReport(fx.e, o)
}
