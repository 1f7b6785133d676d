// Package shellquote quotes words for a POSIX shell, so that a printed
// command line can be pasted as printed and reads back as the same words.
//
// A word that a terminal would not show as it is (a control character, an
// invisible or reordering format character, invalid UTF-8) is written in
// ANSI-C quoting, $'...', which bash, zsh, ksh93 and POSIX.1-2024 sh read.
package shellquote

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Quote quotes s for a POSIX shell, so that a printed command can be
// pasted as printed. A value with a control character, an invisible or
// reordering format character (bidi, Unicode category Cf) or invalid
// UTF-8 is written in ANSI-C quoting, $'...' with those bytes as \xHH
// (bash, zsh, ksh93, POSIX.1-2024 sh): the terminal then shows, and
// interprets, none of them, and pasting the command reproduces the exact
// value. A caller may refuse such values before they get here (relaylock
// refuses them in flag values); other values, such as a file name, might
// still hold one.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if !printable(s) {
		return ANSIC(s)
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

// printable reports whether s is valid UTF-8 without control or format
// characters, so that a terminal shows it as it is.
func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

// ANSIC writes s as $'...': backslash and quote escaped, and every byte of
// a control or format character, and every invalid byte, as \xHH.
func ANSIC(s string) string {
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

// Join joins words into a command line a POSIX shell reads back as the
// same words.
func Join(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = Quote(w)
	}
	return strings.Join(q, " ")
}
