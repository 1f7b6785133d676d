package report

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"ascii", "220 mx.example.com ESMTP", "220 mx.example.com ESMTP"},
		{"latin", "Prüfung – “ok” €", "Prüfung – “ok” €"},
		{"emoji", "hi 😀", "hi <U+1F600>"},
		{"control", "a\x07b\x00c\x1b", `a\x07b\x00c\x1b`},
		{"line ends", "a\r\nb\tc", `a\r\nb\tc`},
		{"del and c1", "a\x7fb\u0085c", `a\x7fb\u0085c`},
		{"invalid utf8", "a\xffb\xc3", "a\uFFFDb\uFFFD"},
		{"bidi", "abc\u202Edcba\u202C \u2066x\u2069 \u200F", "abc<U+202E>dcba<U+202C> <U+2066>x<U+2069> <U+200F>"},
		{"invisible", "a\u200Bb\uFEFFc\u00ADd", "a<U+200B>b<U+FEFF>c<U+00AD>d"},
		{"cjk hebrew", "中ש", "<U+4E2D><U+05E9>"},
		{"private use", "\uE000", "<U+E000>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := clean(tc.in)
			if got != tc.want {
				t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if clean(got) != got {
				t.Errorf("clean is not idempotent on %q", got)
			}
			if !isClean(got) {
				t.Errorf("isClean(%q) = false", got)
			}
		})
	}
}

func TestCleanText(t *testing.T) {
	if got := cleanText("a\r\nb\nc\rd"); got != "a\nb\nc\\rd" {
		t.Errorf("cleanText = %q", got)
	}
}

func TestHardWrap(t *testing.T) {
	s := strings.Repeat("ab€", 100) + "😀"
	c := clean(s)
	parts := hardWrap(c, 7)
	if strings.Join(parts, "") != c {
		t.Fatal("hardWrap lost text")
	}
	for _, p := range parts {
		if utf8.RuneCountInString(p) > 7 {
			t.Errorf("part %q longer than 7 runes", p)
		}
	}
	if got := hardWrap("", 5); len(got) != 1 || got[0] != "" {
		t.Errorf("empty: %q", got)
	}
}

// TestHardWrapKeepsTimes: a banner whose time falls on the wrap point is
// broken before the time, never inside it ("08 » :29:35").
func TestHardWrapKeepsTimes(t *testing.T) {
	banner := "220 mail.corp.example Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 ready at  Thu, 3 Dec 2026 08:29:35 +0000¶"
	for n := 40; n <= len(banner); n++ { // tokens up to n/2 runes stay whole
		parts := hardWrap(banner, n)
		if strings.Join(parts, "") != banner {
			t.Fatalf("width %d: text lost", n)
		}
		at := 0
		for _, p := range parts {
			if utf8.RuneCountInString(p) > n {
				t.Errorf("width %d: part %q longer than %d runes", n, p, n)
			}
			at += len(p)
			for _, tok := range []string{"08:29:35", "6.0.3790.4675", "mail.corp.example"} {
				if i := strings.Index(banner, tok); at > i && at < i+len(tok) {
					t.Errorf("width %d: %q cut: %q", n, tok, parts)
				}
			}
		}
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "a", "😀", "\xff", "\u202E", "a\r\n", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := clean(s)
		if !utf8.ValidString(c) {
			t.Fatalf("invalid UTF-8 from %q", s)
		}
		for _, r := range c {
			if !safeRune(r) {
				t.Fatalf("unsafe rune %U in clean(%q)", r, s)
			}
		}
		if clean(c) != c {
			t.Fatalf("not idempotent: %q", s)
		}
	})
}
