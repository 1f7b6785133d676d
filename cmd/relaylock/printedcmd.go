package main

import (
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/cliargs"
	"github.com/relaylock/relaylock/internal/engagement"
	"github.com/relaylock/relaylock/internal/shellquote"
)

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
	// The values this run chose for one host (fix's port or TLS name)
	// replace the flags; an empty one leaves its flag out.
	words = append(words, cliargs.FlagWords(c, winrmFlags(winrmHostFlag()), map[string]bool{"winrm-host": true}, map[string]string{
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
	// The mail domain the audit named replaces --mail-domain.
	words = append(words, cliargs.FlagWords(c, retestFlags(), skip, map[string]string{"mail-domain": l.MailDomain})...)
	return shellquote.Join(words)
}
