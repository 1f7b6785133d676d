package main

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
)

// Shell completion. The scripts below call the hidden entry point
// `relaylock __complete -- WORD...` (clicomplete.Command), with the words
// of the command line up to and including the one being completed. It
// only prints candidates, one per line; it never runs a command's action,
// whatever the words are. (urfave/cli's own --generate-bash-completion,
// which completion scripts printed by older versions append, came after
// the words, so a flag that takes a value swallowed it and the command
// ran: `fix ... --yes --ticket <TAB>` applied the fix. runApp treats any
// call carrying it as a completion request too.)

var completionShells = []string{"bash", "zsh", "fish", "powershell"}

// The scripts, one file each in completion/: they call `relaylock
// __complete` (clicomplete.Command) and only print what it prints.
var (
	//go:embed completion/relaylock.bash
	bashCompletion string
	//go:embed completion/_relaylock.zsh
	zshCompletion string
	//go:embed completion/relaylock.fish
	fishCompletion string
	//go:embed completion/relaylock.ps1
	powershellCompletion string
)

func completionCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh, fish or powershell)",
		ArgsUsage: strings.Join(completionShells, "|"),
		UsageText: "relaylock completion bash|zsh|fish|powershell\n\n" +
			"   bash:       source <(relaylock completion bash)\n" +
			"   zsh:        source <(relaylock completion zsh)   (after compinit)\n" +
			"   fish:       relaylock completion fish | source\n" +
			"   powershell: relaylock completion powershell | Out-String | Invoke-Expression\n\n" +
			"Completion only prints candidates (subcommands, flags, and the values of --platform, --format and the\n" +
			"like); pressing TAB never runs a command.\n\n" +
			"Exit codes: 0 the script was printed; 2 usage (no shell, or one it does not know).",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("completion: name one shell: %s", strings.Join(completionShells, ", "))
			}
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(e.Stdout, bashCompletion)
			case "zsh":
				fmt.Fprint(e.Stdout, zshCompletion)
			case "fish":
				fmt.Fprint(e.Stdout, fishCompletion)
			case "powershell", "pwsh":
				fmt.Fprint(e.Stdout, powershellCompletion)
			default:
				return usagef("completion: unknown shell %q: want %s", c.Args().First(), strings.Join(completionShells, ", "))
			}
			return nil
		},
	}
}

// flagValues are the fixed values a flag takes, by command ("" for any);
// the flag "" is the command's argument.
var flagValues = map[string]map[string][]string{
	"":           {"restart": {"ask", "never", "always"}, "depth": {"rcpt", "data", "deliver"}, "winrm-auth": {"ntlm", "basic", "kerberos", "certificate"}},
	"audit":      {"format": engagement.AuditFormats()},
	"inspect":    {"format": {"text", "json"}},
	"verify":     {"format": {"text", "json"}},
	"lab":        {"platform": nil}, // filled from the lab's platforms
	"demo":       {"platform": nil},
	"completion": {"": completionShells},
}

// completionValues are the values of flagValues, for the completion
// engine.
func completionValues(cmd, flag string) []string {
	if vs, ok := flagValues[cmd][flag]; ok {
		if flag == "platform" {
			return engagement.LabPlatforms()
		}
		return vs
	}
	return flagValues[""][flag]
}
