package main

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/audit"
)

// shellQuote quotes s for a POSIX shell, so that a printed command can be
// pasted as printed. A value with a control character, an invisible or
// reordering format character (bidi, Unicode category Cf) or invalid
// UTF-8 is written in ANSI-C quoting, $'...' with those bytes as \xHH
// (bash, zsh, ksh93, POSIX.1-2024 sh): the terminal then shows, and
// interprets, none of them, and pasting the command reproduces the exact
// value. Flag values never get here with one (checkFlagText refuses them);
// other values, such as a file name, might.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	if !printableValue(s) {
		return ansiCQuote(s)
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// printableValue reports whether s is valid UTF-8 without control or
// format characters, so that a terminal shows it as it is.
func printableValue(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

// ansiCQuote writes s as $'...': backslash and quote escaped, and every
// byte of a control or format character, and every invalid byte, as \xHH.
func ansiCQuote(s string) string {
	var b strings.Builder
	b.WriteString("$'")
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == utf8.RuneError && n <= 1, unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			for i := range n {
				fmt.Fprintf(&b, `\x%02x`, s[i])
			}
		default:
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	b.WriteByte('\'')
	return b.String()
}

// commandLine joins words into a command line a POSIX shell reads back as
// the same words.
func commandLine(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellQuote(w)
	}
	return strings.Join(q, " ")
}

// flagArgs renders the flags among names that were given (or set by the
// command itself, as fix sets --winrm-port per host) as arguments.
func flagArgs(c *cli.Context, flags []cli.Flag, skip map[string]bool) []string {
	var out []string
	for _, f := range flags {
		name := f.Names()[0]
		if skip[name] || !c.IsSet(name) {
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
				continue // fix sets --winrm-port 0 for "the default port"
			}
			out = append(out, "--"+name, strconv.Itoa(c.Int(name)))
		case *cli.StringFlag:
			if c.String(name) == "" && f.Value == "" {
				continue // fix resets --winrm-server-name per host
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

// rollbackCommandLine is the rollback command for a change to host, with
// every WinRM flag this run used (never the password: that comes from the
// environment, the password file or the prompt, as it did now), the
// evidence file, and the endpoints re-tested before and after.
func rollbackCommandLine(c *cli.Context, host, backup string, endpoints []string) string {
	words := []string{"relaylock", "rollback", "--winrm-host", host, "--backup", backup}
	words = append(words, flagArgs(c, winrmFlags(), map[string]bool{"winrm-host": true})...)
	// --dc: the restore writes Active Directory where the change was
	// written, not on another DC that has not had it replicated yet.
	for _, n := range []string{"evidence", "ticket", "dc"} {
		if v := c.String(n); v != "" {
			words = append(words, "--"+n, v)
		}
	}
	if c.Bool("no-retest") {
		return commandLine(append(words, "--no-retest"))
	}
	for _, ep := range endpoints {
		words = append(words, "--smtp-target", ep)
	}
	// The flags that shaped the probe, so the re-test is the same test.
	skip := map[string]bool{"targets": true, "resume": true}
	if len(endpoints) > 0 {
		skip["ports"] = true // every endpoint names its port
	}
	words = append(words, flagArgs(c, retestFlags(), skip)...)
	if !c.IsSet("mail-domain") && c.String("mail-domain") != "" {
		words = append(words, "--mail-domain", c.String("mail-domain"))
	}
	return commandLine(words)
}

// retestEndpoints are the "address:port" endpoints a change's re-test
// covers: those of the probe before the change when there was one, else
// the targets (each with --ports when it names no port).
func retestEndpoints(targets []string, ports []int, before *audit.Result) []string {
	var out []string
	if before != nil {
		for _, t := range before.Targets {
			for _, ep := range t.Endpoints {
				if s := net.JoinHostPort(ep.Address, strconv.Itoa(ep.Port)); !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	for _, t := range targets {
		if _, _, err := net.SplitHostPort(t); err == nil {
			out = append(out, t)
			continue
		}
		for _, p := range ports {
			out = append(out, net.JoinHostPort(strings.Trim(t, "[]"), strconv.Itoa(p)))
		}
	}
	return out
}
