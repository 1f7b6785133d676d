package main

import (
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/clicomplete"
)

// Conventions shared by every command (README "Commands"): -o is always
// --output, the file a command writes; -V is the version and -v is never
// it; --quiet drops progress lines.

// useVersionFlag makes -V (--version) the version flag, once, when the
// first app is built: urfave/cli v2 takes it from its package-level
// cli.VersionFlag, not from the App.
var useVersionFlag = sync.OnceFunc(func() {
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Aliases: []string{"V"}, Usage: "print the version and the commit it was built from"}
})

// quietFlag is accepted before the command and after it.
func quietFlag() cli.Flag {
	return &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only results, warnings and errors (no progress lines)"}
}

// unknownCommand is the usage error for a word that names no command.
func unknownCommand(app *cli.App, name string) error {
	hint := ""
	if cli.SuggestCommand != nil {
		if s := cli.SuggestCommand(app.Commands, name); s != "" {
			hint = ". " + s
		}
	}
	return usagef("unknown command %q%s\ncommands: %s", name, hint, strings.Join(clicomplete.CommandNames(app), ", "))
}

// Environment defaults for the flags a consultant repeats on every run
// (README "Environment"); a flag given on the command line wins.
// RELAYLOCK_WINRM_USER and RELAYLOCK_WINRM_CA are in winrmflags.go.
const (
	envProbeDomain = "RELAYLOCK_PROBE_DOMAIN"
	envDNSServer   = "RELAYLOCK_DNS_SERVER"
)
