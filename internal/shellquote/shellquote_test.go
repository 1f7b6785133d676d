package shellquote

import (
	"os/exec"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// hostile has ESC sequences (clear screen, set title), BEL, CR, a bidi
// override, a C1 control and invalid UTF-8.
const hostile = "T-1\r\x1b[2J\x1b]0;pwned\x07 \u202eevil\u202c \u0085 \xff\xfe end"

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"plain", "plain"},
		{"user@host:/a/b_c-d.e,f%g+h=i", "user@host:/a/b_c-d.e,f%g+h=i"},
		{"with space", "'with space'"},
		{"it's", `'it'\''s'`},
		{`C:\Temp\a b`, `'C:\Temp\a b'`},
		{"$HOME", "'$HOME'"},
		{"ü", "'ü'"},
		{"tab\there", `$'tab\x09here'`},
		{"a'b\\c\x1b", `$'a\'b\\c\x1b'`},
		{"\xff", `$'\xff'`},
		{"x\u200by", `$'x\xe2\x80\x8by'`},     // ZERO WIDTH SPACE, category Cf
		{"ü\x1bü", `$'ü\x1bü'`},               // printable non-ASCII stays as it is
		{"\u202eevil", `$'\xe2\x80\xaeevil'`}, // RIGHT-TO-LEFT OVERRIDE
	}
	for _, tc := range tests {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestJoin(t *testing.T) {
	tests := []struct {
		words []string
		want  string
	}{
		{nil, ""},
		{[]string{"relaylock", "rollback", "--backup", "/srv/b 1.json"}, "relaylock rollback --backup '/srv/b 1.json'"},
		{[]string{"a", "", "b"}, "a '' b"},
		{[]string{"--ticket", "CHG\r1"}, `--ticket $'CHG\x0d1'`},
	}
	for _, tc := range tests {
		if got := Join(tc.words); got != tc.want {
			t.Errorf("Join(%q) = %s, want %s", tc.words, got, tc.want)
		}
	}
}

// TestQuoteReadBack: real shells read every quoted word back as the exact
// value (bytes): sh for the printable values, bash and zsh for all.
func TestQuoteReadBack(t *testing.T) {
	printable := []string{"", "plain", "with space", "it's", `C:\Temp\a b`, "$HOME", "a\"b", "--x=y z", "ü", "*", "a;b|c&d"}
	control := []string{hostile, "a'b\\c\x1b", "\xff", "tab\there", "x\u200by", "ü\x1bü"}
	for _, sh := range []string{"sh", "bash", "zsh"} {
		if _, err := exec.LookPath(sh); err != nil {
			t.Logf("%s not installed", sh)
			continue
		}
		values := printable
		if sh != "sh" {
			values = append(values[:len(values):len(values)], control...)
		}
		// One call per shell: every word ends with NUL.
		out, err := exec.Command(sh, "-c", "printf '%s\\0' "+Join(values)).Output()
		if err != nil {
			t.Fatalf("%s: %v", sh, err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if len(got) != len(values) {
			t.Fatalf("%s read %d words back, want %d: %q", sh, len(got), len(values), got)
		}
		for i, v := range values {
			if got[i] != v {
				t.Errorf("%s read %s back as %q, want %q", sh, Quote(v), got[i], v)
			}
		}
	}
}

// TestQuoteTerminalSafe: a quoted word holds nothing a terminal would
// interpret or hide: it is valid UTF-8 without control or format
// characters.
func TestQuoteTerminalSafe(t *testing.T) {
	for _, s := range []string{hostile, "\x00", "\x7f", "\u0085", "\u2066x\u2069", "\xe2\x80", "a\nb"} {
		q := Quote(s)
		if !utf8.ValidString(q) {
			t.Errorf("Quote(%q) = %q: invalid UTF-8", s, q)
		}
		for _, r := range q {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Errorf("Quote(%q) = %q holds U+%04X", s, q, r)
				break
			}
		}
	}
}
