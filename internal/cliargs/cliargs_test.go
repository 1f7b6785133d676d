package cliargs

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/urfave/cli/v2"
)

func TestFlagsFirst(t *testing.T) {
	app := &cli.App{Commands: []*cli.Command{{Name: "audit", Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}},
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}},
	}}}}
	tests := []struct{ args, want []string }{
		{[]string{"p"}, []string{"p"}},
		{[]string{"p", "audit"}, []string{"p", "audit"}},
		{[]string{"p", "audit", "a.example"}, []string{"p", "audit", "--", "a.example"}},
		{[]string{"p", "audit", "a.example", "--format", "json"}, []string{"p", "audit", "--format", "json", "--", "a.example"}},
		{[]string{"p", "audit", "a.example", "-f", "json", "b.example"}, []string{"p", "audit", "-f", "json", "--", "a.example", "b.example"}},
		{[]string{"p", "audit", "a.example", "--format=csv"}, []string{"p", "audit", "--format=csv", "--", "a.example"}},
		// A boolean takes no value: the next word stays an argument.
		{[]string{"p", "audit", "--yes", "a.example"}, []string{"p", "audit", "--yes", "--", "a.example"}},
		// "--" ends the flags: a word after it that looks like one is an argument.
		{[]string{"p", "audit", "a.example", "--", "--format"}, []string{"p", "audit", "--", "a.example", "--format"}},
		// An unknown flag goes first, for the parser to report.
		{[]string{"p", "audit", "a.example", "--nope", "x"}, []string{"p", "audit", "--nope", "--", "a.example", "x"}},
		// A value flag last, without its value: the parser reports it.
		{[]string{"p", "audit", "a.example", "--format"}, []string{"p", "audit", "--format", "--", "a.example"}},
		// "-" alone is an argument (stdin, by convention).
		{[]string{"p", "audit", "-"}, []string{"p", "audit", "--", "-"}},
		// Global flags before the command stay where they are.
		{[]string{"p", "--quiet", "audit", "a.example", "-y"}, []string{"p", "--quiet", "audit", "-y", "--", "a.example"}},
		// No command: unchanged.
		{[]string{"p", "audti", "a.example", "--format", "json"}, []string{"p", "audti", "a.example", "--format", "json"}},
	}
	for _, tc := range tests {
		if got := FlagsFirst(app, tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("FlagsFirst(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestTextError(t *testing.T) {
	tests := []struct{ in, want string }{
		{"CHG-42 Müller & Söhne", ""},
		{"株式会社", ""},
		{"x\u200by", ""}, // ZERO WIDTH SPACE is no control and no bidi control
		{"", ""},
		{"CHG-1\r\x1b[2J", "a control character (U+000D) at offset 5 is not allowed"},
		{"a\tb", "a control character (U+0009) at offset 1 is not allowed"},
		{"ACME \xff", "invalid UTF-8 (byte 0xff at offset 5)"},
		{"ü\xe2\x80", "invalid UTF-8 (byte 0xe2 at offset 2)"},
		{"\uFFFD is fine", ""}, // U+FFFD written out is valid UTF-8
		{"a\u0085", "a control character (U+0085) at offset 1 is not allowed"},
		{"AUTH-\u202e1", "a bidi control character (U+202E) at offset 5 is not allowed: it reorders how the value is shown"},
		{"\u2067x", "a bidi control character (U+2067) at offset 0 is not allowed: it reorders how the value is shown"},
		{"x\u061c", "a bidi control character (U+061C) at offset 1 is not allowed: it reorders how the value is shown"},
	}
	for _, tc := range tests {
		err := TextError(tc.in)
		if got := errString(err); got != tc.want {
			t.Errorf("TextError(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestBidiControlIsUnicodes: isBidiControl is the Bidi_Control property
// of the Unicode Character Database, which Go's unicode package carries.
func TestBidiControlIsUnicodes(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if isBidiControl(r) != unicode.Is(unicode.Bidi_Control, r) {
			t.Errorf("isBidiControl(U+%04X) = %v, Unicode's Bidi_Control %v", r, isBidiControl(r), !isBidiControl(r))
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// runWith runs a command with flags on args and returns what action
// returned.
func runWith(t *testing.T, flags []cli.Flag, args []string, action func(*cli.Context) error) error {
	t.Helper()
	app := &cli.App{Name: "p", Commands: []*cli.Command{{Name: "x", Flags: flags, Action: action}},
		ExitErrHandler: func(*cli.Context, error) {}}
	return app.Run(append([]string{"p", "x"}, args...))
}

func TestCheckText(t *testing.T) {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "ticket"},
		&cli.StringSliceFlag{Name: "allow"},
		&cli.PathFlag{Name: "file"},
		&cli.StringFlag{Name: "name"},
		&cli.StringFlag{Name: "password", Hidden: true},
		&cli.IntFlag{Name: "port"},
	}
	skip := map[string]bool{"name": true}
	tests := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--ticket", "CHG-42", "--allow", "192.0.2.1", "--port", "25"}, ""},
		{[]string{"--ticket", "CHG\x1b[2J"}, "--ticket: a control character (U+001B) at offset 3 is not allowed"},
		{[]string{"--allow", "192.0.2.1", "--allow", "x\u202e"}, "--allow: a bidi control character (U+202E) at offset 1 is not allowed: it reorders how the value is shown"},
		{[]string{"--file", "/tmp/a\xff"}, "--file: invalid UTF-8 (byte 0xff at offset 6)"},
		{[]string{"--name", "has its\x07own rules"}, ""}, // skipped
		{[]string{"--password", "\x1b"}, ""},             // hidden: never looked at
	}
	for _, tc := range tests {
		var got error
		if err := runWith(t, flags, tc.args, func(c *cli.Context) error { got = CheckText(c, skip); return nil }); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if errString(got) != tc.want {
			t.Errorf("CheckText(%q) = %q, want %q", tc.args, errString(got), tc.want)
		}
		if tc.want != "" && errors.Unwrap(got) == nil {
			t.Errorf("CheckText(%q) does not wrap TextError's error", tc.args)
		}
	}
}

func TestFlagWords(t *testing.T) {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}},
		&cli.IntFlag{Name: "port"},
		&cli.IntFlag{Name: "per-host", Value: 16},
		&cli.StringFlag{Name: "mode", Value: "ask"},
		&cli.BoolFlag{Name: "https", Value: true},
		&cli.StringSliceFlag{Name: "dns"},
		&cli.DurationFlag{Name: "timeout"},
		&cli.Float64Flag{Name: "rate"},
		&cli.StringFlag{Name: "domain"},
		&cli.StringFlag{Name: "skipped"},
		&cli.StringFlag{Name: "password", Hidden: true},
	}
	skip := map[string]bool{"skipped": true}
	tests := []struct {
		args []string
		over map[string]string
		want []string
	}{
		{nil, nil, nil},
		{[]string{"-u", `CORP\admin`, "--https=false", "--timeout", "90s", "--rate", "2.5", "--dns", "a,b", "--dns", "c"}, nil,
			[]string{"--user", `CORP\admin`, "--https=false", "--dns", "a", "--dns", "b", "--dns", "c", "--timeout", "1m30s", "--rate", "2.5"}},
		// Zero given where zero is the default is "the default", not printed.
		{[]string{"--port", "0", "--per-host", "0", "--mode", ""}, nil, []string{"--per-host", "0", "--mode", ""}},
		{[]string{"--skipped", "x", "--password", "secret"}, nil, nil},
		// over replaces a given flag, adds one not given, drops an empty one.
		{[]string{"--port", "5986", "--user", "a"}, map[string]string{"port": "5985", "domain": "corp.example", "user": ""},
			[]string{"--port", "5985", "--domain", "corp.example"}},
		{nil, map[string]string{"port": "0"}, nil},
	}
	for _, tc := range tests {
		var got []string
		if err := runWith(t, flags, tc.args, func(c *cli.Context) error { got = FlagWords(c, flags, skip, tc.over); return nil }); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("FlagWords(%q, over %v)\n got %q\nwant %q", tc.args, tc.over, got, tc.want)
		}
		for _, w := range got {
			if strings.Contains(w, "secret") {
				t.Errorf("FlagWords rendered a hidden flag: %q", got)
			}
		}
	}
}
