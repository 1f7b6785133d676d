package engagement

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report"
	"github.com/relaylock/relaylock/report/evidence"
)

// FixOptions are the settings of the whole job on one mail domain.
type FixOptions struct {
	// Domain is the mail domain to audit.
	Domain string
	// WinRM is how to reach the open hosts: its Host is not used (each
	// host is the one the audit probed, or Hosts maps it), and its Port,
	// ServerName and SPN are the defaults a host's own values replace.
	WinRM WinRMOptions
	// Hosts maps an MX host name (lower case, without the final dot) to
	// the HOST[:PORT] to reach it at over WinRM.
	Hosts   map[string]string
	Request remediate.Request
	Change  ChangeOptions
	Probe   ProbeOptions
	// DC is the domain controller of an Exchange 2000/2003 host.
	DC string
	// Evidence.Path "" names a new file relaylock-evidence-DOMAIN-TIME.json.
	Evidence EvidenceOptions
	// Output is the PDF report; "" names relaylock-report-DOMAIN-TIME.pdf
	// beside the evidence.
	Output string
	// SignKey signs the evidence and the report.
	SignKey string
	// RollbackCommand renders the rollback command printed for each
	// change (RemediateOptions.RollbackCommand).
	RollbackCommand func(RollbackLine) string
}

// Fix audits the domain, inspects and remediates each open Windows host,
// re-tests, and writes the evidence and the PDF report.
func Fix(ctx context.Context, e *Env, o FixOptions) error {
	domain := o.Domain
	stamp := time.Now().UTC().Format("20060102T150405Z")
	ev := o.Evidence
	evPath := ev.Path
	if evPath == "" {
		evPath = fmt.Sprintf("relaylock-evidence-%s-%s.json", safeName(domain), stamp)
		ev.Path = evPath
	}
	pdfPath := o.Output
	if pdfPath == "" {
		pdfPath = filepath.Join(filepath.Dir(evPath), fmt.Sprintf("relaylock-report-%s-%s.pdf", safeName(domain), stamp))
	}
	// Re-tests probe the open hosts' addresses directly; tell the
	// probe which mail domain they serve, for the controls.
	probe := o.Probe
	if probe.MailDomain == "" {
		probe.MailDomain = domain
	}
	fx, err := newFixer(ctx, e, o.Change, probe, ev, o.DC, o.RollbackCommand)
	if err != nil {
		return err
	}
	if b := o.Change.Backup; b != "" && !o.Change.DryRun {
		if err := backupFree(b); err != nil { // before the audit, not after it
			return err
		}
	}
	fx.rec.engagement.Scope = []string{domain}

	fx.progress("step 1/3: auditing %s from outside", domain)
	before, err := fx.probeOnly(ctx, []string{domain}, evidence.PurposeAudit, "")
	if err != nil {
		return fmt.Errorf("audit %s: %w", domain, err)
	}
	// Recorded once the first open host is known to be the machine the
	// evidence knows under its address (fixer.flush).
	fx.unrecorded = append(fx.unrecorded, func() { fx.recordProbe(before, []string{domain}, evidence.PurposeAudit, "", "", nil) })
	hosts := openHosts(before)
	if len(hosts) == 0 {
		fx.progress("%s: no open relay found (%s)", domain, before.Verdict)
	}
	var results []*hostResult
	var firstErr error
	// A mapping's :PORT applies to its host only; the others use
	// --winrm-port (or its default).
	for i, h := range hosts {
		target := h.mx
		m, mapped := o.Hosts[strings.ToLower(strings.TrimSuffix(h.mx, "."))]
		if mapped {
			target = m
		} else if h.addr != "" {
			// The address the audit probed, never a fresh lookup of
			// the MX name: with split DNS that could send the
			// credentials to another host than the one audited.
			target = h.addr
		}
		winrmHost, port := target, 0
		if hh, pp, err := net.SplitHostPort(target); err == nil {
			winrmHost = hh
			port, _ = strconv.Atoi(pp)
		}
		fx.progress("step 2/3: host %d of %d: %s is open (%s); inspecting, changing and re-testing %s over WinRM", i+1, len(hosts), h.mx, strings.Join(h.triggers, ", "), target)
		w := o.WinRM // this host's: its address, port and names
		w.Host = winrmHost
		if port != 0 {
			w.Port = port
		}
		w.ServerName, w.SPN = hostNames(o.WinRM, mapped, h)
		res, err := fx.fixHost(ctx, w, h.targets, o.Request, before)
		results = append(results, res)
		if err != nil {
			fmt.Fprintf(PrintableLines{W: e.Stderr}, "relaylock: %s: %v\n", h.mx, err) // may quote the host
			if firstErr == nil {
				firstErr = err
			}
			if ctx.Err() != nil || fx.otherMachine {
				break
			}
		}
	}

	fx.flush()
	if fx.otherMachine {
		// The evidence is another machine's: nothing of this run was
		// added to it, and a report from it would describe that machine.
		fmt.Fprintf(e.Stderr, "relaylock: no report written: %s records another machine under this address\n", evPath)
		return firstErr
	}
	fx.progress("step 3/3: writing the report %s", pdfPath)
	if err := Report(ctx, e, ReportOptions{Evidence: evPath, Output: pdfPath, SignKey: o.SignKey,
		Render: report.Options{Client: o.Evidence.Client}}); err != nil {
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
		return WithCode(ExitStillOpen, nil)
	case stillOpen || (len(hosts) > 0 && !applied && anyOpen(results)):
		return WithCode(ExitOpen, nil)
	case unverified:
		for _, r := range results {
			if r.unverified() {
				return r.exitErr() // says why: an endpoint untested, or the inside view
			}
		}
		return WithCode(ExitInconclusive, errors.New("a re-test was inconclusive: the change is not verified"))
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
}

func anyOpen(rs []*hostResult) bool {
	for _, r := range rs {
		if r.after == nil || r.stillOpen {
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
	switch {
	case h.insideOnly:
		after += " (NOT VERIFIED: inside view)"
	case h.unverified():
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
	case h.out.Change != nil && h.out.Change.Result == remediate.ResultRolledBack:
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
