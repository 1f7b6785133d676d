package main

import (
	_ "embed"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
)

// Shell completion. The scripts below call the hidden entry point
// `relaylock __complete -- WORD...`, with the words of the command line up
// to and including the one being completed. It only prints candidates, one
// per line; it never runs a command's action, whatever the words are.
// (urfave/cli's own --generate-bash-completion is appended after the
// words, so a flag that takes a value swallowed it and the command ran:
// `fix ... --yes --ticket <TAB>` applied the fix.)
const completeCommand = "__complete"

// legacyCompletionFlag is what completion scripts printed by older
// versions append; runApp treats any call carrying it as a completion
// request, so a script still sourced in an old shell cannot run anything.
const legacyCompletionFlag = "--generate-bash-completion"

var completionShells = []string{"bash", "zsh", "fish", "powershell"}

// The scripts, one file each in completion/: they call `relaylock
// __complete` (completeCommand) and only print what it prints.
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

// completionRequest reports whether args (with the program name first)
// ask for completion, and returns the words to complete: everything after
// the program name, the last being the word under the cursor.
func completionRequest(args []string) ([]string, bool) {
	if len(args) >= 2 && args[1] == completeCommand {
		words := args[2:]
		// PowerShell drops an empty argument, so its script passes the
		// word under the cursor first, as --cur=WORD.
		cur, hasCur := "", false
		if len(words) > 0 && strings.HasPrefix(words[0], "--cur=") {
			cur, hasCur, words = strings.TrimPrefix(words[0], "--cur="), true, words[1:]
		}
		if len(words) > 0 && words[0] == "--" {
			words = words[1:]
		}
		if hasCur {
			words = append(slices.Clone(words), cur)
		}
		return words, true
	}
	for i, a := range args {
		if a == legacyCompletionFlag && i > 0 {
			// Old scripts pass the words before the cursor, then the flag.
			return append(slices.Clone(args[1:i]), ""), true
		}
	}
	return nil, false
}

// flagValues are the fixed values a flag takes, by command ("" for any).
var flagValues = map[string]map[string][]string{
	"":        {"restart": {"ask", "never", "always"}, "depth": {"rcpt", "data", "deliver"}, "winrm-auth": {"ntlm", "basic", "kerberos", "certificate"}},
	"audit":   {"format": engagement.AuditFormats()},
	"inspect": {"format": {"text", "json"}},
	"verify":  {"format": {"text", "json"}},
	"lab":     {"platform": nil}, // filled from the lab's platforms
	"demo":    {"platform": nil},
}

// writeCompletions prints the candidates for words (the last is the word
// being completed) to w. It reads nothing but the command definitions.
func writeCompletions(w io.Writer, app *cli.App, words []string) {
	for _, s := range completions(app, words) {
		fmt.Fprintln(w, s)
	}
}

func completions(app *cli.App, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, prev := words[len(words)-1], words[:len(words)-1]
	var cmd *cli.Command
	rest := prev
	for i, wd := range prev {
		if strings.HasPrefix(wd, "-") || wd == "=" {
			continue
		}
		if wd == "help" {
			return prefixed(commandNames(app), cur)
		}
		if cmd = app.Command(wd); cmd == nil {
			return nil // an unknown command: nothing to offer
		}
		rest = prev[i+1:]
		break
	}
	// bash splits "--format=js" into "--format", "=", "js".
	if n := len(rest); n >= 2 && rest[n-1] == "=" && strings.HasPrefix(rest[n-2], "-") {
		return prefixed(valuesFor(cmd, rest[n-2]), cur)
	}
	if n := len(rest); n >= 1 && cur == "=" && strings.HasPrefix(rest[n-1], "-") {
		return valuesFor(cmd, rest[n-1])
	}
	if cmd == nil {
		if strings.HasPrefix(cur, "-") {
			return prefixed(flagNames(app.Flags), cur)
		}
		return prefixed(commandNames(app), cur)
	}
	if cmd.Name == "completion" && !strings.HasPrefix(cur, "-") {
		if len(rest) == 0 {
			return prefixed(completionShells, cur)
		}
		return nil
	}
	// --flag=value in one word (zsh, fish, PowerShell).
	if strings.HasPrefix(cur, "-") {
		if name, val, ok := strings.Cut(cur, "="); ok {
			var out []string
			for _, v := range prefixed(valuesFor(cmd, name), val) {
				out = append(out, name+"="+v)
			}
			return out
		}
		return prefixed(flagNames(cmd.Flags), cur)
	}
	// The value of the flag before the cursor.
	if n := len(rest); n > 0 && strings.HasPrefix(rest[n-1], "-") && !strings.Contains(rest[n-1], "=") {
		if f := lookupFlag(cmd.Flags, rest[n-1]); f != nil && takesValue(f) {
			return prefixed(valuesFor(cmd, rest[n-1]), cur)
		}
	}
	return nil // a positional argument or a free value: the shell offers files
}

func valuesFor(cmd *cli.Command, flag string) []string {
	name := strings.TrimLeft(flag, "-")
	cmdName := ""
	if cmd != nil {
		cmdName = cmd.Name
		if f := lookupFlag(cmd.Flags, flag); f != nil {
			name = f.Names()[0]
		}
	}
	if vs, ok := flagValues[cmdName][name]; ok {
		if name == "platform" {
			return engagement.LabPlatforms()
		}
		return vs
	}
	return flagValues[""][name]
}

func prefixed(ss []string, prefix string) []string {
	var out []string
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

func commandNames(app *cli.App) []string {
	var out []string
	for _, c := range app.Commands {
		if !c.Hidden {
			out = append(out, c.Name)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func flagNames(flags []cli.Flag) []string {
	var out []string
	for _, f := range flags {
		if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
			continue
		}
		for _, n := range f.Names() {
			if len(n) == 1 {
				out = append(out, "-"+n)
			} else {
				out = append(out, "--"+n)
			}
		}
	}
	out = append(out, "--help")
	sort.Strings(out)
	return slices.Compact(out)
}

func lookupFlag(flags []cli.Flag, arg string) cli.Flag {
	name := strings.TrimLeft(arg, "-")
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

func takesValue(f cli.Flag) bool {
	_, isBool := f.(*cli.BoolFlag)
	return !isBool
}
