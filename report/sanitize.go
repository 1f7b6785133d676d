package report

import (
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/sfnt"
)

// Every string that reaches the PDF passes through clean or cleanLines.
// Banners, replies, connector names and script output come from servers
// and admins, so they may hold anything. gofpdf panics on runes above
// U+FFFF and silently draws an empty box for runes the font lacks
// (docs/reporting.md §4.3, items 3 and 4), and control or bidi characters would
// hide or reorder what the reader sees. So:
//
//   - invalid UTF-8 bytes become U+FFFD (the font has it);
//   - control characters become Go escapes: \t \r \n \x07 \x7f \u0085;
//   - bidi controls (U+202A..U+202E, U+2066..U+2069, U+200E, U+200F,
//     U+061C) and other invisible format characters (Unicode category Cf,
//     such as U+200B, U+FEFF, U+00AD) become "<U+202E>";
//   - runes the Go fonts have no glyph for (every rune above U+FFFF, CJK,
//     Hebrew, Arabic, most symbols) become "<U+1F600>".
//
// The four Go fonts used (regular, bold, italic, mono) cover the same 709
// runes, so one coverage table serves all of them.

var (
	coverOnce sync.Once
	covered   [0x10000 / 64]uint64 // bit set per BMP rune with a glyph
)

func loadCoverage() {
	f, err := sfnt.Parse(goregular.TTF)
	if err != nil {
		panic(fmt.Sprintf("parse Go font: %v", err)) // embedded: cannot fail
	}
	var buf sfnt.Buffer
	for r := rune(0); r < 0x10000; r++ {
		if g, err := f.GlyphIndex(&buf, r); err == nil && g != 0 {
			covered[r/64] |= 1 << (r % 64)
		}
	}
}

// hasGlyph reports whether the Go fonts can draw r.
func hasGlyph(r rune) bool {
	coverOnce.Do(loadCoverage)
	return r >= 0 && r < 0x10000 && covered[r/64]&(1<<(r%64)) != 0
}

// isBidiControl reports the characters that change the display order.
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) ||
		r == 0x200E || r == 0x200F || r == 0x061C
}

// safeRune reports whether r can go to the PDF as itself.
func safeRune(r rune) bool {
	if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
		return false
	}
	if isBidiControl(r) || unicode.Is(unicode.Cf, r) {
		return false
	}
	return hasGlyph(r)
}

// isClean reports whether clean(s) == s, the fast path.
func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			return isCleanSlow(s[i:])
		}
	}
	return true
}

func isCleanSlow(s string) bool {
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if (r == utf8.RuneError && n <= 1) || !safeRune(r) {
			return false
		}
		s = s[n:]
	}
	return true
}

// clean makes one line of untrusted text safe and visible (see above).
func clean(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		s = s[n:]
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteRune('\uFFFD') // invalid UTF-8
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r < 0xa0:
			fmt.Fprintf(&b, `\u%04x`, r)
		case safeRune(r):
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "<U+%04X>", r)
		}
	}
	return b.String()
}

// cleanText cleans multi-line text: it keeps line feeds (a CR LF or a lone
// LF ends a line) and cleans each line.
func cleanText(s string) string {
	lines := splitLines(s)
	for i, l := range lines {
		lines[i] = clean(l)
	}
	return strings.Join(lines, "\n")
}

// splitLines splits at LF, dropping one CR before each LF, so that a
// stray CR stays visible as \r.
func splitLines(s string) []string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if i < len(lines)-1 {
			lines[i] = strings.TrimSuffix(l, "\r")
		}
	}
	return lines
}

// hardWrap cuts a cleaned line into pieces of at most n runes (for the
// monospaced transcripts). It breaks after a space where one falls in the
// second half of the piece, so that words, times ("08:29:35") and
// addresses stay whole; only a run of more than n/2 runs without a space
// is cut inside. Nothing is dropped: the parts joined give s.
func hardWrap(s string, n int) []string {
	if n < 1 {
		n = 1
	}
	if utf8.RuneCountInString(s) <= n {
		return []string{s}
	}
	var out []string
	for s != "" {
		i, c, brk := 0, 0, -1
		for i < len(s) && c < n {
			r, sz := utf8.DecodeRuneInString(s[i:])
			i += sz
			c++
			if r == ' ' && c > n/2 {
				brk = i // break after this space
			}
		}
		if i < len(s) && brk > 0 && s[i] != ' ' {
			i = brk
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}
