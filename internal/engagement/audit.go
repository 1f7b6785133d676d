package engagement

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/report/evidence"
)

// ProbeOptions shape a probe: the audit's own, and the re-tests of
// remediate, rollback and fix. They are checked when the probe is set up
// (a bad --ports fails the re-test, not the command line).
type ProbeOptions struct {
	// Ports is the comma-separated list of ports, as typed.
	Ports       string
	From        string
	ProbeDomain string
	MailDomain  string
	Helo        string
	// Depth is rcpt, data or deliver ("": data, or deliver with Deliver).
	Depth string
	// DepthGiven: Depth was given, not a default (it then conflicts with
	// Deliver and catch mode unless it is deliver).
	DepthGiven bool
	// To is the external test recipient; ToGiven: it was given (catch
	// mode, which names the recipient itself, refuses it).
	To             string
	ToGiven        bool
	Deliver        bool
	Contact        string
	Concurrency    int // 0: automatic
	PerHost        int
	Rate           float64
	Timeout        time.Duration // greeting and per-command; 0: audit's default
	ConnectTimeout time.Duration
	Deadline       time.Duration
	GreylistRetry  time.Duration
	AllTests       bool
	HeloVariants   bool
	AuthTests      bool
	DNSServers     []string
}

// CatchOptions start the catcher for an audit (catch mode).
type CatchOptions struct {
	// Domain is the catch domain; "" is no catch mode.
	Domain string
	Listen string
	Wait   time.Duration
	// ListenGiven and WaitGiven say that Listen and Wait were given, not
	// defaults (they need a Domain).
	ListenGiven, WaitGiven bool
}

// AuditOptions are the settings of an audit.
type AuditOptions struct {
	// Targets are the targets named as arguments.
	Targets []string
	// TargetsFile reads the targets from a file instead (one per line, or
	// CSV client,domain[,winrm-host]).
	TargetsFile string
	// Resume continues an interrupted TargetsFile run from its journal.
	Resume bool
	// Format is text, json, jsonl or csv.
	Format   string
	Probe    ProbeOptions
	Catch    CatchOptions
	Evidence EvidenceOptions
}

// AuditFormats are the output formats of an audit.
func AuditFormats() []string { return slices.Clone(auditFormats) }

// Audit probes the targets for open relay, prints the result on stdout
// and adds it to the evidence. The exit code is ExitOpen for an open
// relay and ExitInconclusive when something could not be tested.
func Audit(ctx context.Context, e *Env, o AuditOptions) error {
	args := o.Targets
	var entries []targetEntry
	if f := o.TargetsFile; f != "" {
		if len(args) > 0 {
			return Usagef("give targets either with --targets or as arguments, not both")
		}
		var err error
		if entries, err = readTargetsFile(f); err != nil {
			return err
		}
		for _, en := range entries {
			args = append(args, en.Target)
		}
	}
	if o.Resume && (entries == nil || o.Evidence.Path == "") {
		return Usagef("--resume needs --targets FILE and --evidence FILE")
	}
	opts, err := o.Probe.auditOptions(e, args)
	if err != nil {
		return err
	}
	format := o.Format
	if !slices.Contains(auditFormats, format) {
		return Usagef("--format must be one of %s", strings.Join(auditFormats, ", "))
	}
	cleanup, err := setupCatch(ctx, e, o, &opts)
	if err != nil {
		return err
	}
	if cleanup != nil {
		defer cleanup()
	}
	if o.Probe.ProbeDomain == "" && opts.Catcher == nil {
		fmt.Fprintln(e.Stderr, "relaylock: using probe domain example.net (RFC 2606)\nhint: pass --probe-domain with a domain you own so bounces reach you")
	}
	var out *audit.ResultWriter // json and jsonl are streamed
	if format == "json" || format == "jsonl" {
		out, _ = audit.NewResultWriter(e.Stdout, format, len(opts.Targets))
	}
	var res *audit.Result
	var evErr error // the evidence could not be written
	if entries != nil && o.Evidence.Path != "" {
		res, err = auditJournaled(ctx, e, o, opts, entries)
		if res == nil {
			return err
		}
		if ew := (*evidenceWriteError)(nil); errors.As(err, &ew) {
			evErr, err = ew.err, nil
		}
		if out != nil {
			if werr := out.WriteAll(res); werr != nil {
				return fmt.Errorf("write the result: %w", werr)
			}
		}
	} else {
		// Stream: stdout gets each target as it finishes, and the
		// result keeps only summaries (text) or verdicts (JSON)
		// unless the evidence needs every transcript.
		if o.Evidence.Path == "" && format != "csv" { // csv counts every test
			opts.SummaryOnly, opts.VerdictOnly = true, out != nil
		}
		if out != nil {
			opts.OnStart = out.Start
			prev := opts.OnTarget
			opts.OnTarget = func(i int, tr audit.TargetResult) {
				if i < len(entries) {
					tr.Client, tr.WinRMHost = entries[i].Client, entries[i].WinRMHost
				}
				out.Target(i, tr)
				if prev != nil {
					prev(i, tr)
				}
			}
		}
		res, err = runProbe(ctx, e, opts)
		if err != nil && res == nil {
			if errors.Is(err, audit.ErrBadTarget) {
				return Usagef("%v", err)
			}
			return err
		}
		for i := range entries {
			res.Targets[i].Client, res.Targets[i].WinRMHost = entries[i].Client, entries[i].WinRMHost
		}
		if out != nil {
			if werr := out.Finish(res); werr != nil {
				return fmt.Errorf("write the result: %w", werr)
			}
		}
		rec := newRecorder(ctx, e, o.Evidence, opts.Targets)
		if werr := rec.update(func(b *evidence.Bundle) {
			b.Audits = append(b.Audits, evidence.AuditRun{Purpose: evidence.PurposeAudit, Result: res})
			rec.log(b, "audit", "", fmt.Sprintf("probed %s: %s", scopeText(opts.Targets), res.Verdict))
		}); werr != nil {
			evErr = werr // the result is printed below all the same
		}
	}
	if out == nil {
		if format == "csv" {
			if err := writeAuditCSV(e.Stdout, res); err != nil {
				return err
			}
		} else if err := audit.WriteSummary(e.Stdout, res); err != nil {
			return err
		}
	}
	if evErr != nil && err == nil {
		return evidenceWriteFailed(e.Stderr, res.Verdict == audit.VerdictOpen, evErr)
	} else if evErr != nil {
		fmt.Fprintf(e.Stderr, "relaylock: the result above is NOT in the evidence file: %v\n", evErr)
	}
	if err != nil {
		return err
	}
	return verdictExit(res)
}

// auditOptions turns the probe options into audit.Options for targets.
func (o ProbeOptions) auditOptions(e *Env, targets []string) (audit.Options, error) {
	var opts audit.Options
	if len(targets) == 0 {
		return opts, Usagef("audit: name at least one TARGET (a mail domain, host or address)")
	}
	ports, err := parsePorts(o.Ports)
	if err != nil {
		return opts, err
	}
	depth := o.Depth
	if o.Deliver {
		if o.DepthGiven && depth != audit.DepthDeliver {
			return opts, Usagef("--deliver conflicts with --depth %s", depth)
		}
		depth = audit.DepthDeliver
	}
	if depth == "" && !o.DepthGiven {
		depth = audit.DepthData
	}
	switch depth {
	case audit.DepthRcpt, audit.DepthData:
	case audit.DepthDeliver:
		// Without --to, catch mode (setupCatch) names the recipient, or
		// refuses.
	default:
		return opts, Usagef("--depth must be rcpt, data or deliver")
	}
	if o.PerHost < 1 {
		return opts, Usagef("--per-host must be at least 1")
	}
	if o.Concurrency < 0 {
		return opts, Usagef("--concurrency must be at least 1 (0: automatic)")
	}
	if o.Rate < 0 {
		return opts, Usagef("--rate must not be negative")
	}
	opts = audit.Options{
		Targets:        targets,
		Ports:          ports,
		From:           o.From,
		To:             o.To,
		ProbeDomain:    o.ProbeDomain,
		MailDomain:     o.MailDomain,
		HeloName:       o.Helo,
		Depth:          depth,
		Contact:        o.Contact,
		Concurrency:    o.Concurrency,
		PerHost:        o.PerHost,
		Rate:           o.Rate,
		ConnectTimeout: o.ConnectTimeout,
		Deadline:       o.Deadline,
		GreylistRetry:  o.GreylistRetry,
		AllTests:       o.AllTests,
		HeloVariants:   o.HeloVariants,
		AuthTests:      o.AuthTests,
		DNSServers:     o.DNSServers,
	}
	if d := o.Timeout; d > 0 {
		opts.GreetingTimeout, opts.CommandTimeout = d, d
	}
	if e.StderrIsTerminal {
		opts.Progress = e.Stderr
	}
	if e.Resolver != nil {
		opts.Resolver = e.Resolver
	} else {
		r, err := audit.NewDNSResolver(audit.DNSConfig{Servers: opts.DNSServers})
		if err != nil {
			return opts, fmt.Errorf("set up DNS: %w", err)
		}
		opts.Resolver = r
	}
	return opts, nil
}

func parsePorts(s string) ([]int, error) {
	var ports []int
	seen := map[int]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p < 1 || p > 65535 {
			return nil, Usagef("--ports: bad port %q", f)
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		return nil, Usagef("--ports: no port given")
	}
	return ports, nil
}

// probeCost says what a probe run cost the servers: endpoints, wall
// time, connections and round trips (each wait for a server reply, the
// greeting included), as the evidence records them per endpoint.
func probeCost(r *audit.Result) string {
	var eps, conns, rts int
	for _, t := range r.Targets {
		for _, ep := range t.Endpoints {
			eps++
			conns += ep.Connections
			rts += ep.RoundTrips
		}
	}
	if eps == 0 {
		return "no endpoint probed"
	}
	return fmt.Sprintf("%s in %s: %s, %s (%.1f per endpoint)", costCount(eps, "endpoint"),
		r.End.Sub(r.Start).Round(10*time.Millisecond), costCount(conns, "connection"), costCount(rts, "round trip"), float64(rts)/float64(eps))
}

// costCount is "1 thing" or "n things".
func costCount(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// verdictExit maps an audit's overall verdict to the exit code: open 3,
// inconclusive 5 (nothing found open, but something could not be
// tested), closed or no-mail 0.
func verdictExit(r *audit.Result) error {
	switch {
	case r == nil:
		return nil
	case r.Verdict == audit.VerdictOpen:
		return WithCode(ExitOpen, nil)
	case r.Verdict == audit.VerdictInconclusive:
		return WithCode(ExitInconclusive, fmt.Errorf("inconclusive: nothing found open, but not everything could be tested%s", inconclusiveWhy(r)))
	}
	return nil
}

// inconclusiveWhy names the first inconclusive target and its reason.
func inconclusiveWhy(r *audit.Result) string {
	for _, t := range r.Targets {
		if t.Verdict == audit.VerdictInconclusive {
			if strings.HasPrefix(t.Reason, t.Target) { // the reason names it already
				return " (" + t.Reason + ")"
			}
			return fmt.Sprintf(" (%s: %s)", t.Target, t.Reason)
		}
	}
	return ""
}
