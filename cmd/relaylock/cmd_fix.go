package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/internal/engagement"
	"github.com/relaylock/relaylock/report"
)

func fixCommand(e *env) *cli.Command {
	flags := append(winrmFlags(), remediateFlags()...)
	flags = append(flags, evidenceFlags()...)
	flags = append(flags, retestFlags()...)
	flags = append(flags,
		&cli.StringSliceFlag{Name: "winrm-map", DefaultText: "the address the audit probed, verified as the MX host name", Usage: "`MX=HOST[:PORT]`: reach mail host MX over WinRM at HOST (repeatable)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, DefaultText: "relaylock-report-DOMAIN-TIME.pdf beside the evidence", Usage: "write the PDF report to `FILE`"},
		&cli.StringFlag{Name: "sign-key", Usage: "sign the evidence and report hashes with this Ed25519 private key `FILE` (see relaylock keygen)"},
	)
	// fix takes the MX=HOST mapping on --winrm-host, as the issue and the
	// README show; the plain host form of the other commands makes no
	// sense for several hosts.
	for i, f := range flags {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Name == "winrm-host" {
			flags[i] = &cli.StringSliceFlag{Category: sf.Category, Name: "winrm-host", DefaultText: "the address the audit probed, verified as the MX host name", Usage: "`MX=HOST[:PORT]`: reach mail host MX over WinRM at HOST (repeatable)"}
		}
	}
	return &cli.Command{
		Name:  "fix",
		Usage: "the whole job: audit a domain, inspect and remediate each open Windows host, re-test, write the evidence and the PDF report",
		UsageText: "relaylock fix DOMAIN --allow 192.0.2.10 [--winrm-host MX=HOST ...] [--evidence FILE] [-o report.pdf] [--yes]\n\n" +
			"Exit codes: 0 no open relay left; 1 error; 2 usage (a bad flag, or an --allow entry refused before anything is\n" +
			"touched); 3 open and nothing applied (declined, or --yes missing while stdin is not a terminal); 4 applied but\n" +
			"still open on re-test; 5 a re-test could not test every endpoint (not verified); 6 done, but the evidence\n" +
			"file could not take a record after the change began; 130 interrupted.",
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
			pdfPath := c.String("output")
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
			if b := c.String("backup"); b != "" && !c.Bool("dry-run") {
				if err := backupFree(b); err != nil { // before the audit, not after it
					return err
				}
			}
			fx.rec.SetScope([]string{domain})

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
			names := winrmNames{c: c, serverName: c.String("winrm-server-name"), spn: c.String("winrm-spn")}
			for i, h := range hosts {
				target := h.mx
				m, mapped := mapping[strings.ToLower(strings.TrimSuffix(h.mx, "."))]
				if mapped {
					target = m
				} else if h.addr != "" {
					// The address the audit probed, never a fresh lookup of
					// the MX name: with split DNS that could send the
					// credentials to another host than the one audited.
					target = h.addr
				}
				if err := names.set(mapped, h); err != nil {
					return err
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
					fmt.Fprintf(printableLines{W: e.Stderr}, "relaylock: %s: %v\n", h.mx, err) // may quote the host
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
			stillOpen, applied, unverified := false, false, false
			for i, r := range results {
				line := r.summary()
				if mx := hosts[i].mx; !strings.EqualFold(mx, r.host) {
					line = mx + " at " + line // the WinRM host it was reached at
				}
				fmt.Fprintf(e.Stdout, "  %s\n", line)
				stillOpen = stillOpen || r.stillOpen || (r.after == nil && !r.applied)
				applied = applied || r.applied
				unverified = unverified || r.unverified()
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
			case unverified:
				return withCode(exitInconclusive, errors.New("a re-test was inconclusive: the change is not verified"))
			}
			if len(hosts) == 0 {
				return engagement.VerdictExit(before)
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
	if h.unverified() {
		after += " (NOT VERIFIED)"
	}
	var did string
	switch {
	case h.out == nil:
		did = "not remediated"
	case h.pending:
		did = fmt.Sprintf("pending (DS2MB): %d change(s) written to Active Directory, not yet in the metabase; re-check with relaylock inspect; backup %s", len(h.out.Change.Applied), h.out.BackupFile)
	case h.out.NoChange:
		did = "no change needed"
	case h.out.Change != nil && h.out.Change.Result == "rolled-back":
		did = fmt.Sprintf("%d change(s) applied, then rolled back: the host is back in its prior state (backup %s)", len(h.out.Change.Applied), h.out.BackupFile)
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
	// addr is the address the audit probed for it (its first open
	// endpoint's): fix reaches WinRM there without --winrm-host.
	addr string
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
				if h.addr == "" {
					h.addr = ep.Address
				}
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
	return engagement.Report(c.Context, fx.e, engagement.ReportOptions{Evidence: evPath, Output: pdfPath, SignKey: c.String("sign-key"),
		Render: report.Options{Client: c.String("client")}})
}
