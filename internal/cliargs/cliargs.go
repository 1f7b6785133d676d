// Package cliargs handles the argument words of a urfave/cli v2 app
// around its parser: it moves flags given after a command's arguments in
// front of them, refuses flag text a terminal would not show as it is,
// and renders the flags a run was given back into words.
package cliargs

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
)

// FlagsFirst moves a subcommand's flags that follow its arguments in
// front of them, so that `prog audit example.com --format json` works as
// users expect: urfave/cli v2 stops parsing flags at the first argument.
// A flag's value is kept with it; "--" ends flag handling.
func FlagsFirst(app *cli.App, args []string) []string {
	if len(args) < 3 {
		return args
	}
	// Find the subcommand: the first argument that names one, after any
	// global flags.
	ci := -1
	var cmd *cli.Command
	for i := 1; i < len(args); i++ {
		if strings.HasPrefix(args[i], "-") {
			continue
		}
		cmd = app.Command(args[i])
		ci = i
		break
	}
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	known := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			known[n] = true
			takesValue[n] = !isBool
		}
	}
	var flags, pos []string
	rest := args[ci+1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			flags = append(flags, a)
			continue
		}
		if !known[name] {
			flags = append(flags, a) // let cli report it
			continue
		}
		flags = append(flags, a)
		if takesValue[name] && i+1 < len(rest) {
			flags = append(flags, rest[i+1])
			i++
		}
	}
	out := append([]string{}, args[:ci+1]...)
	out = append(out, flags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out
}

// CheckText returns an error naming the first string or path flag of c's
// command that was set to a value TextError refuses, as "--NAME: why".
// The flags in skip are left out, and so are hidden flags, so that a
// secret defined only to be refused is not looked at.
func CheckText(c *cli.Context, skip map[string]bool) error {
	if c.Command == nil {
		return nil
	}
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if vf, ok := f.(cli.VisibleFlag); (ok && !vf.IsVisible()) || !c.IsSet(name) || skip[name] {
			continue
		}
		var vals []string
		switch f.(type) {
		case *cli.StringFlag, *cli.PathFlag:
			vals = []string{c.String(name)}
		case *cli.StringSliceFlag:
			vals = c.StringSlice(name)
		default:
			continue
		}
		for _, v := range vals {
			if err := TextError(v); err != nil {
				return fmt.Errorf("--%s: %w", name, err)
			}
		}
	}
	return nil
}

// TextError says where s holds a character no flag value may hold: a
// control character, a bidi control or invalid UTF-8.
func TextError(s string) error {
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return fmt.Errorf("invalid UTF-8 (byte 0x%02x at offset %d)", s[i], i)
			}
		case unicode.IsControl(r):
			return fmt.Errorf("a control character (U+%04X) at offset %d is not allowed", r, i)
		case isBidiControl(r):
			return fmt.Errorf("a bidi control character (U+%04X) at offset %d is not allowed: it reorders how the value is shown", r, i)
		}
	}
	return nil
}

// isBidiControl reports the characters that change the display order
// (Unicode Standard Annex #9, explicit directional formatting).
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) ||
		r == 0x200E || r == 0x200F || r == 0x061C
}

// FlagWords renders the flags of flags that were given as arguments to c
// as words, "--NAME", "VALUE" (booleans as --NAME=true|false), in the
// order of flags. The flags in skip are left out. A flag in over takes
// that value instead, the value the run chose for it, and is left out
// when that is empty or "0". Hidden flags are never rendered, nor an
// int or string flag whose value and default are both zero.
func FlagWords(c *cli.Context, flags []cli.Flag, skip map[string]bool, over map[string]string) []string {
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
			continue // e.g. a password flag defined only to be refused
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
				continue // 0 is often "the default", e.g. the default port
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
