package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/internal/engagement"
	"github.com/relaylock/relaylock/report/evidence"
)

// Hooks for catch mode. cmd_audit_catch.go (the catcher's owner) appends
// its flags (--catch-domain, --catch-listen, --catch-wait) to
// auditExtraFlags in an init func and sets auditSetupCatch, which may set
// opts.Catcher and opts.CatchWait and returns a cleanup run after the
// audit.
var (
	auditExtraFlags []cli.Flag
	auditSetupCatch func(c *cli.Context, e *env, opts *audit.Options) (cleanup func(), err error)
)

func auditFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringSliceFlag{Name: "dns-server", EnvVars: []string{envDNSServer}, Usage: "DNS `SERVER` to ask (HOST or HOST:PORT, repeatable or comma-separated); required on Windows"},
		&cli.StringFlag{Name: "ports", Value: "25", Usage: "comma-separated `PORTS` to probe (465 uses implicit TLS), e.g. 25,587,465"},
		&cli.StringFlag{Name: "from", DefaultText: "random@probe-domain", Usage: "envelope sender `ADDR` (a mailbox you own, for bounces)"},
		&cli.StringFlag{Name: "to", DefaultText: "relaytest@probe-domain", Usage: "external test recipient `ADDR`"},
		&cli.StringFlag{Name: "probe-domain", EnvVars: []string{envProbeDomain}, DefaultText: "example.net, RFC 2606", Usage: "a `DOMAIN` you control, used in test senders and recipients"},
		&cli.StringFlag{Name: "mail-domain", Usage: "the mail `DOMAIN` served by host or address targets (for control C1 and local-sender tests)"},
		&cli.StringFlag{Name: "helo", DefaultText: "this host's name", Usage: "EHLO `NAME` (a FQDN whose forward and reverse DNS match)"},
		&cli.StringFlag{Name: "depth", Value: audit.DepthData, Usage: "how far to go (`DEPTH`): rcpt (RCPT only), data (DATA, drop on 354) or deliver (send a marked message)"},
		&cli.BoolFlag{Name: "deliver", Usage: "send a marked test message to --to (your own mailbox) and report the token to look for"},
		&cli.StringFlag{Name: "contact", Usage: "`TEXT` naming whom to contact, put in delivered test messages"},
		&cli.IntFlag{Name: "concurrency", DefaultText: "automatic: from the open-file limit and memory, at most 512", Usage: "most `N` endpoints probed at once; lowered for a while when connects fail on this machine or time out in bulk"},
		&cli.IntFlag{Name: "per-host", Value: 16, Usage: "at most `N` parallel connections to one address, over all targets (an endpoint uses one, and spreads its tests over more only when the replies are slow or the server hangs up)"},
		&cli.Float64Flag{Name: "rate", DefaultText: "0, unlimited", Usage: "at most `N` new connections per second over the whole run"},
		&cli.DurationFlag{Name: "timeout", DefaultText: "60s", Usage: "greeting and per-command `TIMEOUT`"},
		&cli.DurationFlag{Name: "connect-timeout", DefaultText: "15s", Usage: "TCP connect `TIMEOUT`"},
		&cli.DurationFlag{Name: "deadline", DefaultText: "none", Usage: "stop the whole audit after this `DURATION`"},
		&cli.DurationFlag{Name: "greylist-retry", Value: audit.DefaultGreylistRetry, Usage: "retry greylisted tests (same sender, recipient and address) after the delay the server names, or a minute, for at most this `DURATION` in all; 0: report them inconclusive at once"},
		&cli.BoolFlag{Name: "all-tests", Usage: "run every test even after an endpoint is found open"},
		&cli.BoolFlag{Name: "helo-variants", Usage: "also try EHLO as the target's own names (tests E39a-d)"},
		&cli.BoolFlag{Name: "auth-tests", Usage: "also try to relay after AUTH that must fail: an NTLM null session, a made-up account over LOGIN and PLAIN, a garbage CRAM-MD5 answer (tests A41a-d; the server may log failed logins)"},
		&cli.StringFlag{Name: "format", Value: "text", Usage: "output `FORMAT`: text, json (one document, written as targets finish), jsonl (one target per line) or csv (one row per endpoint, for spreadsheets)"},
		&cli.StringFlag{Name: "targets", Usage: "read targets from `FILE`: one TARGET per line, or CSV client,domain[,winrm-host] (# comments); with --evidence, each finished target is journaled to EVIDENCE.journal"},
		&cli.BoolFlag{Name: "resume", Usage: "continue an interrupted --targets run from EVIDENCE.journal, without probing finished targets again"},
	}
	flags = append(flags, auditEvidenceFlags()...)
	return append(flags, auditExtraFlags...)
}

func auditCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "audit",
		Usage:     "test mail servers for open relay (every MX, every address, every port, before and after STARTTLS)",
		ArgsUsage: "TARGET...",
		UsageText: "relaylock audit [flags] TARGET...\n   relaylock audit --targets FILE --evidence EVIDENCE [--resume] [flags]\n\nTARGET is a mail domain (its MX hosts are tested), a host name, or an address, with an optional :port.\nOnly the targets you name are probed.\n\nExit codes: 0 no open relay, and everything tested; 1 error; 2 usage; 3 an open relay was found; 5 inconclusive: nothing\n" +
			"found open, but something could not be tested; 6 the result was printed but the evidence file could not be written; 130 interrupted.",
		Flags: auditFlags(),
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			var entries []targetEntry
			if f := c.String("targets"); f != "" {
				if len(args) > 0 {
					return usagef("give targets either with --targets or as arguments, not both")
				}
				var err error
				if entries, err = readTargetsFile(f); err != nil {
					return err
				}
				for _, en := range entries {
					args = append(args, en.Target)
				}
			}
			if c.Bool("resume") && (entries == nil || c.String("evidence") == "") {
				return usagef("--resume needs --targets FILE and --evidence FILE")
			}
			opts, err := auditOptions(c, e, args)
			if err != nil {
				return err
			}
			format := c.String("format")
			if !slices.Contains(auditFormats, format) {
				return usagef("--format must be one of %s", strings.Join(auditFormats, ", "))
			}
			if auditSetupCatch != nil {
				cleanup, err := auditSetupCatch(c, e, &opts)
				if err != nil {
					return err
				}
				if cleanup != nil {
					defer cleanup()
				}
			}
			if c.String("probe-domain") == "" && opts.Catcher == nil {
				fmt.Fprintln(e.Stderr, "relaylock: using probe domain example.net (RFC 2606)\nhint: pass --probe-domain with a domain you own so bounces reach you")
			}
			var out *audit.ResultWriter // json and jsonl are streamed
			if format == "json" || format == "jsonl" {
				out, _ = audit.NewResultWriter(e.Stdout, format, len(opts.Targets))
			}
			var res *audit.Result
			var evErr error // the evidence could not be written
			if entries != nil && c.String("evidence") != "" {
				res, err = auditJournaled(c, e, opts, entries)
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
				if c.String("evidence") == "" && format != "csv" { // csv counts every test
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
				res, err = engagement.RunProbe(c.Context, e, opts)
				if err != nil && res == nil {
					if errors.Is(err, audit.ErrBadTarget) {
						return usagef("%v", err)
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
				rec := newRecorder(c, e, opts.Targets)
				if werr := rec.Update(func(b *evidence.Bundle) {
					b.Audits = append(b.Audits, evidence.AuditRun{Purpose: "audit", Result: res})
					rec.Log(b, "audit", "", fmt.Sprintf("probed %s: %s", scopeText(opts.Targets), res.Verdict))
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
		},
	}
}

// auditOptions turns flags into audit.Options (lesson 2: no *cli.Context
// below cmd/). remediate's re-test can call it with its own targets.
func auditOptions(c *cli.Context, e *env, targets []string) (audit.Options, error) {
	var opts audit.Options
	if len(targets) == 0 {
		return opts, usagef("audit: name at least one TARGET (a mail domain, host or address)")
	}
	ports, err := parsePorts(c.String("ports"))
	if err != nil {
		return opts, err
	}
	depth := c.String("depth")
	if c.Bool("deliver") {
		if c.IsSet("depth") && depth != audit.DepthDeliver {
			return opts, usagef("--deliver conflicts with --depth %s", depth)
		}
		depth = audit.DepthDeliver
	}
	switch depth {
	case audit.DepthRcpt, audit.DepthData:
	case audit.DepthDeliver:
		if c.String("to") == "" && auditSetupCatch == nil {
			return opts, usagef("--deliver needs --to ADDR, a mailbox you own")
		}
	default:
		return opts, usagef("--depth must be rcpt, data or deliver")
	}
	if c.Int("per-host") < 1 {
		return opts, usagef("--per-host must be at least 1")
	}
	if c.Int("concurrency") < 0 {
		return opts, usagef("--concurrency must be at least 1 (0: automatic)")
	}
	if c.Float64("rate") < 0 {
		return opts, usagef("--rate must not be negative")
	}
	opts = audit.Options{
		Targets:        targets,
		Ports:          ports,
		From:           c.String("from"),
		To:             c.String("to"),
		ProbeDomain:    c.String("probe-domain"),
		MailDomain:     c.String("mail-domain"),
		HeloName:       c.String("helo"),
		Depth:          depth,
		Contact:        c.String("contact"),
		Concurrency:    c.Int("concurrency"),
		PerHost:        c.Int("per-host"),
		Rate:           c.Float64("rate"),
		ConnectTimeout: c.Duration("connect-timeout"),
		Deadline:       c.Duration("deadline"),
		GreylistRetry:  c.Duration("greylist-retry"),
		AllTests:       c.Bool("all-tests"),
		HeloVariants:   c.Bool("helo-variants"),
		AuthTests:      c.Bool("auth-tests"),
		DNSServers:     c.StringSlice("dns-server"),
	}
	if d := c.Duration("timeout"); d > 0 {
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
			return nil, usagef("--ports: bad port %q", f)
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		return nil, usagef("--ports: no port given")
	}
	return ports, nil
}
