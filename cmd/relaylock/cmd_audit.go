package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/internal/engagement"
)

// auditFlags are audit's flags: those that shape the probe, the output,
// the evidence and catch mode.
func auditFlags() []cli.Flag {
	flags := probeFlags([]cli.Flag{
		&cli.BoolFlag{Name: "deliver", Usage: "send a marked test message to --to (your own mailbox) and report the token to look for"},
		&cli.StringFlag{Name: "contact", Usage: "`TEXT` naming whom to contact, put in delivered test messages"},
	})
	flags = append(flags, targetsFlags(&cli.StringFlag{Name: "format", Value: "text", Usage: "output `FORMAT`: text, json (one document, written as targets finish), jsonl (one target per line) or csv (one row per endpoint, for spreadsheets)"})...)
	flags = append(flags, evidenceFlags(engagementTicketFlag())...)
	return append(flags, catchFlags()...)
}

// retestFlags are the flags that shape the probe, for the commands that
// probe before and after a change (remediate, rollback, fix): the same
// test matrix as `relaylock audit`, without its output, delivery and
// catch flags.
func retestFlags() []cli.Flag { return append(probeFlags(nil), targetsFlags()...) }

// probeFlags are the flags that shape a probe (probeOptions maps them),
// with delivery, audit's own, in their place in the list.
func probeFlags(delivery []cli.Flag) []cli.Flag {
	flags := []cli.Flag{
		&cli.StringSliceFlag{Name: "dns-server", EnvVars: []string{envDNSServer}, Usage: "DNS `SERVER` to ask (HOST or HOST:PORT, repeatable or comma-separated); required on Windows"},
		&cli.StringFlag{Name: "ports", Value: "25", Usage: "comma-separated `PORTS` to probe (465 uses implicit TLS), e.g. 25,587,465"},
		&cli.StringFlag{Name: "from", DefaultText: "random@probe-domain", Usage: "envelope sender `ADDR` (a mailbox you own, for bounces)"},
		&cli.StringFlag{Name: "to", DefaultText: "relaytest@probe-domain", Usage: "external test recipient `ADDR`"},
		&cli.StringFlag{Name: "probe-domain", EnvVars: []string{envProbeDomain}, DefaultText: "example.net, RFC 2606", Usage: "a `DOMAIN` you control, used in test senders and recipients"},
		&cli.StringFlag{Name: "mail-domain", Usage: "the mail `DOMAIN` served by host or address targets (for control C1 and local-sender tests)"},
		&cli.StringFlag{Name: "helo", DefaultText: "this host's name", Usage: "EHLO `NAME` (a FQDN whose forward and reverse DNS match)"},
		&cli.StringFlag{Name: "depth", Value: audit.DepthData, Usage: "how far to go (`DEPTH`): rcpt (RCPT only), data (DATA, drop on 354) or deliver (send a marked message)"},
	}
	flags = append(flags, delivery...)
	return append(flags,
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
	)
}

// targetsFlags are --targets and --resume, after the given flags (audit's
// --format).
func targetsFlags(before ...cli.Flag) []cli.Flag {
	return append(before,
		&cli.StringFlag{Name: "targets", Usage: "read targets from `FILE`: one TARGET per line, or CSV client,domain[,winrm-host] (# comments); with --evidence, each finished target is journaled to EVIDENCE.journal"},
		&cli.BoolFlag{Name: "resume", Usage: "continue an interrupted --targets run from EVIDENCE.journal, without probing finished targets again"},
	)
}

const catchCategory = "Catch mode (proves relaying by receiving the relayed message)"

// catchFlags start the built-in receiver for the audit (catch mode).
func catchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "catch-domain", Category: catchCategory,
			Usage: "catch relayed test messages addressed to *@`DOMAIN`; DOMAIN's MX must point at this machine and inbound port 25 must reach --catch-listen"},
		&cli.StringFlag{Name: "catch-listen", Category: catchCategory, Value: audit.DefaultCatchListen,
			Usage: "`ADDR:PORT` the catcher listens on (port 25 needs root or CAP_NET_BIND_SERVICE, or a port redirect)"},
		&cli.DurationFlag{Name: "catch-wait", Category: catchCategory, Value: engagement.DefaultCatchWait,
			Usage: "after the probes, wait up to `DURATION` for relayed messages to arrive"},
	}
}

func auditCommand(e *env, run func(context.Context, *env, engagement.AuditOptions) error) *cli.Command {
	return &cli.Command{
		Name:      "audit",
		Usage:     "test mail servers for open relay (every MX, every address, every port, before and after STARTTLS)",
		ArgsUsage: "TARGET...",
		UsageText: "relaylock audit [flags] TARGET...\n   relaylock audit --targets FILE --evidence EVIDENCE [--resume] [flags]\n\nTARGET is a mail domain (its MX hosts are tested), a host name, or an address, with an optional :port.\nOnly the targets you name are probed.\n\nExit codes: 0 no open relay, and everything tested; 1 error; 2 usage; 3 an open relay was found; 5 inconclusive: nothing\n" +
			"found open, but something could not be tested; 6 the result was printed but the evidence file could not be written; 130 interrupted.",
		Flags: auditFlags(),
		Action: func(c *cli.Context) error {
			return run(c.Context, e, engagement.AuditOptions{
				Targets:     c.Args().Slice(),
				TargetsFile: c.String("targets"),
				Resume:      c.Bool("resume"),
				Format:      c.String("format"),
				Probe:       probeOptions(c),
				Catch: engagement.CatchOptions{
					Domain: c.String("catch-domain"), Listen: c.String("catch-listen"), Wait: c.Duration("catch-wait"),
					ListenGiven: c.IsSet("catch-listen"), WaitGiven: c.IsSet("catch-wait"),
				},
				Evidence: evidenceOptions(c),
			})
		},
	}
}

// probeOptions maps the flags that shape a probe (auditFlags, and
// retestFlags on the commands that re-test).
func probeOptions(c *cli.Context) engagement.ProbeOptions {
	o := engagement.ProbeOptions{
		Ports:          c.String("ports"),
		From:           c.String("from"),
		To:             c.String("to"),
		ToGiven:        c.IsSet("to"),
		Depth:          c.String("depth"),
		DepthGiven:     c.IsSet("depth"),
		ProbeDomain:    c.String("probe-domain"),
		MailDomain:     c.String("mail-domain"),
		Helo:           c.String("helo"),
		Deliver:        c.Bool("deliver"),
		Contact:        c.String("contact"),
		Concurrency:    c.Int("concurrency"),
		PerHost:        c.Int("per-host"),
		Rate:           c.Float64("rate"),
		Timeout:        c.Duration("timeout"),
		ConnectTimeout: c.Duration("connect-timeout"),
		Deadline:       c.Duration("deadline"),
		GreylistRetry:  c.Duration("greylist-retry"),
		AllTests:       c.Bool("all-tests"),
		HeloVariants:   c.Bool("helo-variants"),
		AuthTests:      c.Bool("auth-tests"),
		DNSServers:     c.StringSlice("dns-server"),
	}
	return o
}
