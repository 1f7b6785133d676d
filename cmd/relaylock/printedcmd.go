package main

import (
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
	"github.com/relaylock/relaylock/internal/shellquote"
)

// flagArgs renders the flags that were given as arguments. A flag in
// over takes that value instead, the value the run chose for it (fix's
// port or TLS name for one host, the mail domain the audit named), and is
// left out when that is empty.
func flagArgs(c *cli.Context, flags []cli.Flag, skip map[string]bool, over map[string]string) []string {
	var out []string
	for _, f := range flags {
		name := f.Names()[0]
		if skip[name] {
			continue
		}
		if v, ok := over[name]; ok {
			if v != "" && v != "0" {
				out = append(out, "--"+name, v)
			}
			continue
		}
		if !c.IsSet(name) {
			continue
		}
		if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
			continue // --winrm-password: refused anyway, never printed
		}
		switch f := f.(type) {
		case *cli.BoolFlag:
			out = append(out, "--"+name+"="+strconv.FormatBool(c.Bool(name)))
		case *cli.StringSliceFlag:
			for _, v := range c.StringSlice(name) {
				out = append(out, "--"+name, v)
			}
		case *cli.IntFlag:
			if c.Int(name) == 0 && f.Value == 0 {
				continue // 0 is "the default port"
			}
			out = append(out, "--"+name, strconv.Itoa(c.Int(name)))
		case *cli.StringFlag:
			if c.String(name) == "" && f.Value == "" {
				continue
			}
			out = append(out, "--"+name, c.String(name))
		case *cli.DurationFlag:
			out = append(out, "--"+name, c.Duration(name).String())
		case *cli.Float64Flag:
			out = append(out, "--"+name, strconv.FormatFloat(c.Float64(name), 'g', -1, 64))
		default:
			out = append(out, "--"+name, c.String(name))
		}
	}
	return out
}

// rollbackLine renders the rollback commands of a run of remediate or fix
// from its command line c.
func rollbackLine(c *cli.Context) func(engagement.RollbackLine) string {
	return func(l engagement.RollbackLine) string { return rollbackCommandLine(c, l) }
}

// rollbackCommandLine is the rollback command for a change to l.Host, with
// every WinRM flag this run used (never the password: that comes from the
// environment, the password file or the prompt, as it did now), the
// evidence file, and the endpoints re-tested before and after.
func rollbackCommandLine(c *cli.Context, l engagement.RollbackLine) string {
	words := []string{"relaylock", "rollback", "--winrm-host", l.Host, "--backup", l.Backup}
	words = append(words, flagArgs(c, winrmFlags(winrmHostFlag()), map[string]bool{"winrm-host": true}, map[string]string{
		"winrm-port": strconv.Itoa(l.WinRMPort), "winrm-server-name": l.ServerName, "winrm-spn": l.SPN})...)
	// --dc: the restore writes Active Directory where the change was
	// written, not on another DC that has not had it replicated yet.
	for _, f := range []struct{ name, value string }{{"evidence", l.Evidence}, {"ticket", c.String("ticket")}, {"dc", c.String("dc")}} {
		if f.value != "" {
			words = append(words, "--"+f.name, f.value)
		}
	}
	if c.Bool("no-retest") {
		return shellquote.Join(append(words, "--no-retest"))
	}
	for _, ep := range l.Endpoints {
		words = append(words, "--smtp-target", ep)
	}
	// The flags that shaped the probe, so the re-test is the same test.
	skip := map[string]bool{"targets": true, "resume": true}
	if len(l.Endpoints) > 0 {
		skip["ports"] = true // every endpoint names its port
	}
	words = append(words, flagArgs(c, retestFlags(), skip, map[string]string{"mail-domain": l.MailDomain})...)
	return shellquote.Join(words)
}
