package audit

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzPrintable: whatever a server sends, Printable's output is valid
// UTF-8 without control or format characters, and text that had none of
// them comes back unchanged.
func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[2J\r\n\t\x07", "\xff\xfe", "\u202eevil\u200b", "\u0085\u009b", "ü株\uFFFD"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Printable(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Printable(%q) = %q: invalid UTF-8", s, out)
		}
		clean := utf8.ValidString(s)
		for _, r := range out {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("Printable(%q) = %q holds U+%04X", s, out, r)
			}
		}
		for _, r := range s {
			clean = clean && !unicode.IsControl(r) && !unicode.Is(unicode.Cf, r)
		}
		if clean && out != s {
			t.Fatalf("Printable(%q) = %q, want it unchanged", s, out)
		}
	})
}
