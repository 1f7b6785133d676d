package main

import (
	"context"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
)

func fixCommand(e *env, run func(context.Context, *env, engagement.FixOptions) error) *cli.Command {
	// fix takes the MX=HOST mapping on --winrm-host, as the README shows;
	// the plain host form of the other commands makes no sense for
	// several hosts.
	host := &cli.StringSliceFlag{Category: winrmCategory, Name: "winrm-host", DefaultText: "the address the audit probed, verified as the MX host name", Usage: "`MX=HOST[:PORT]`: reach mail host MX over WinRM at HOST (repeatable)"}
	flags := append(winrmFlags(host), remediateFlags()...)
	flags = append(flags, evidenceFlags(changeTicketFlag())...)
	flags = append(flags, retestFlags()...)
	flags = append(flags,
		&cli.StringSliceFlag{Name: "winrm-map", DefaultText: "the address the audit probed, verified as the MX host name", Usage: "`MX=HOST[:PORT]`: reach mail host MX over WinRM at HOST (repeatable)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, DefaultText: "relaylock-report-DOMAIN-TIME.pdf beside the evidence", Usage: "write the PDF report to `FILE`"},
		&cli.StringFlag{Name: "sign-key", Usage: "sign the evidence and report hashes with this Ed25519 private key `FILE` (see relaylock keygen)"},
	)
	return &cli.Command{
		Name:  "fix",
		Usage: "the whole job: audit a domain, inspect and remediate each open Windows host, re-test, write the evidence and the PDF report",
		UsageText: "relaylock fix DOMAIN --allow 192.0.2.10 [--winrm-host MX=HOST ...] [--evidence FILE] [-o report.pdf] [--yes]\n\n" +
			"Exit codes: 0 no open relay left; 1 error; 2 usage (a bad flag, or an --allow entry refused before anything is\n" +
			"touched); 3 open and nothing applied (declined, or --yes missing while stdin is not a terminal); 4 applied but\n" +
			"still open on re-test; 5 a re-test could not test every endpoint, or saw a relay only from inside the allowed\n" +
			"list (not verified); 6 done, but the evidence file could not take a record after the change began; 130\n" +
			"interrupted.",
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
			return run(c.Context, e, engagement.FixOptions{Domain: domain, WinRM: fixWinRMOptions(c), Hosts: mapping, Request: req,
				Change: changeOptions(c), Probe: probeOptions(c), DC: c.String("dc"), Evidence: evidenceOptions(c),
				Output: c.String("output"), SignKey: c.String("sign-key"), RollbackCommand: rollbackLine(c)})
		},
	}
}

// fixWinRMOptions maps fix's WinRM flags: --winrm-host is the MX=HOST
// mapping there (FixOptions.Hosts), not a host.
func fixWinRMOptions(c *cli.Context) engagement.WinRMOptions {
	w := winrmOptions(c)
	w.Host = ""
	return w
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
