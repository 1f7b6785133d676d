// Package clicomplete completes the command line of a urfave/cli v2 app
// for a shell, from the app's command and flag definitions alone.
//
// A shell's completion script calls the program's hidden entry point
// `PROG __complete -- WORD...` with the words of the command line up to
// and including the one being completed; the program answers with
// Request and Write, before it runs the app, and prints candidates one
// per line. Nothing here runs a command's action, whatever the words are.
// (urfave/cli's own --generate-bash-completion is appended after the
// words, so a flag that takes a value swallowed it and the command ran.)
package clicomplete

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// Command is the hidden entry point the completion scripts call.
const Command = "__complete"

// LegacyFlag is what urfave/cli's completion scripts append; Request
// treats any call carrying it as a completion request, so a script still
// sourced in an old shell cannot run anything.
const LegacyFlag = "--generate-bash-completion"

// Values returns the fixed values the program knows for command's flag,
// where command is the command's name ("" before any command) and flag
// is the flag's first name without dashes; for flag "" it returns the
// values of the command's first argument. nil offers nothing, so that
// the shell offers files.
type Values func(command, flag string) []string

// Request reports whether args (with the program name first) ask for
// completion, and returns the words to complete: everything after the
// program name, the last being the word under the cursor.
func Request(args []string) ([]string, bool) {
	if len(args) >= 2 && args[1] == Command {
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
		if a == LegacyFlag && i > 0 {
			// Old scripts pass the words before the cursor, then the flag.
			return append(slices.Clone(args[1:i]), ""), true
		}
	}
	return nil, false
}

// Write prints the candidates for words (the last is the word being
// completed) to w, one per line. It reads nothing but the command
// definitions and values.
func Write(w io.Writer, app *cli.App, words []string, values Values) {
	for _, s := range Candidates(app, words, values) {
		fmt.Fprintln(w, s)
	}
}

// Candidates returns the candidates for words (the last is the word
// being completed): command names, flag names, and the values of the
// flag before the cursor or of a command's first argument.
func Candidates(app *cli.App, words []string, values Values) []string {
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
			return prefixed(CommandNames(app), cur)
		}
		if cmd = app.Command(wd); cmd == nil {
			return nil // an unknown command: nothing to offer
		}
		rest = prev[i+1:]
		break
	}
	// bash splits "--format=js" into "--format", "=", "js".
	if n := len(rest); n >= 2 && rest[n-1] == "=" && strings.HasPrefix(rest[n-2], "-") {
		return prefixed(valuesFor(values, cmd, rest[n-2]), cur)
	}
	if n := len(rest); n >= 1 && cur == "=" && strings.HasPrefix(rest[n-1], "-") {
		return valuesFor(values, cmd, rest[n-1])
	}
	if cmd == nil {
		if strings.HasPrefix(cur, "-") {
			return prefixed(FlagNames(app.Flags), cur)
		}
		return prefixed(CommandNames(app), cur)
	}
	// The command's first argument.
	if len(rest) == 0 && !strings.HasPrefix(cur, "-") {
		return prefixed(values(cmd.Name, ""), cur)
	}
	// --flag=value in one word (zsh, fish, PowerShell).
	if strings.HasPrefix(cur, "-") {
		if name, val, ok := strings.Cut(cur, "="); ok {
			var out []string
			for _, v := range prefixed(valuesFor(values, cmd, name), val) {
				out = append(out, name+"="+v)
			}
			return out
		}
		return prefixed(FlagNames(cmd.Flags), cur)
	}
	// The value of the flag before the cursor.
	if n := len(rest); n > 0 && strings.HasPrefix(rest[n-1], "-") && !strings.Contains(rest[n-1], "=") {
		if f := lookupFlag(cmd.Flags, rest[n-1]); f != nil && takesValue(f) {
			return prefixed(valuesFor(values, cmd, rest[n-1]), cur)
		}
	}
	return nil // a positional argument or a free value: the shell offers files
}

// valuesFor asks values for the values of flag (as typed, with dashes)
// of cmd (nil before any command), by the flag's first name.
func valuesFor(values Values, cmd *cli.Command, flag string) []string {
	name := strings.TrimLeft(flag, "-")
	cmdName := ""
	if cmd != nil {
		cmdName = cmd.Name
		if f := lookupFlag(cmd.Flags, flag); f != nil {
			name = f.Names()[0]
		}
	}
	if name == "" {
		return nil // "-" or "--": no flag, and not the first argument
	}
	return values(cmdName, name)
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

// CommandNames returns the names of app's visible commands, sorted.
func CommandNames(app *cli.App) []string {
	var out []string
	for _, c := range app.Commands {
		if !c.Hidden {
			out = append(out, c.Name)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// FlagNames returns every name of the visible flags, with their dashes,
// and --help, sorted.
func FlagNames(flags []cli.Flag) []string {
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
