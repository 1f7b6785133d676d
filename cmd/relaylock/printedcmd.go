package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
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
		return commandLine(append(words, "--no-retest"))
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
	return commandLine(words)
}
