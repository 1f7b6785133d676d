package clicomplete

import (
	"bytes"
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

// testApp has a command with value flags, a boolean and a hidden flag, a
// command whose argument has values, and a hidden command. Its actions
// fail the test: completion must never run one.
func testApp(t *testing.T) *cli.App {
	ran := func(c *cli.Context) error {
		t.Errorf("completion ran %s", c.Command.Name)
		return nil
	}
	app := &cli.App{
		Name:  "prog",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}}, &cli.StringFlag{Name: "mode"}},
		Commands: []*cli.Command{
			{Name: "scan", Action: ran, Flags: []cli.Flag{
				&cli.StringFlag{Name: "format", Aliases: []string{"f"}},
				&cli.StringFlag{Name: "ticket"},
				&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}},
				&cli.StringFlag{Name: "secret", Hidden: true},
			}},
			{Name: "shell", Action: ran},
			{Name: "sync", Action: ran},
			{Name: "debug", Action: ran, Hidden: true},
		},
	}
	app.Setup()
	return app
}

func testValues(cmd, flag string) []string {
	switch {
	case cmd == "scan" && flag == "format":
		return []string{"text", "json", "jsonl"}
	case cmd == "shell" && flag == "":
		return []string{"bash", "zsh"}
	case flag == "mode":
		return []string{"fast", "full"}
	}
	return nil
}

func TestCandidates(t *testing.T) {
	app := testApp(t)
	tests := []struct {
		words []string
		want  []string
	}{
		{nil, []string{"help", "scan", "shell", "sync"}}, // "debug" is hidden
		{[]string{""}, []string{"help", "scan", "shell", "sync"}},
		{[]string{"s"}, []string{"scan", "shell", "sync"}},
		{[]string{"-"}, []string{"--help", "--mode", "--quiet", "-h", "-q"}},
		// Before a command, a flag's value is offered only in bash's
		// split form; otherwise the next word is taken for the command.
		{[]string{"--mode", ""}, []string{"help", "scan", "shell", "sync"}},
		{[]string{"--mode", "=", "f"}, []string{"fast", "full"}},
		{[]string{"help", "sh"}, []string{"shell"}},
		{[]string{"scan", "--"}, []string{"--format", "--help", "--ticket", "--yes"}}, // no hidden --secret
		{[]string{"scan", "-"}, []string{"--format", "--help", "--ticket", "--yes", "-f", "-y"}},
		{[]string{"scan", "--format", ""}, []string{"text", "json", "jsonl"}},
		{[]string{"scan", "-f", "js"}, []string{"json", "jsonl"}}, // an alias, by the first name
		{[]string{"scan", "--format", "=", "js"}, []string{"json", "jsonl"}},
		{[]string{"scan", "--format", "="}, []string{"text", "json", "jsonl"}},
		{[]string{"scan", "--format=j"}, []string{"--format=json", "--format=jsonl"}},
		{[]string{"scan", "--mode", ""}, nil},   // --mode is no flag of scan
		{[]string{"scan", "--ticket", ""}, nil}, // a free value: files
		{[]string{"scan", "--yes", ""}, nil},    // after a boolean: an argument
		{[]string{"scan", "x", "--format", ""}, []string{"text", "json", "jsonl"}},
		{[]string{"scan", "-", "=", ""}, nil}, // "-" names no flag, not the argument
		{[]string{"shell", ""}, []string{"bash", "zsh"}},
		{[]string{"shell", "z"}, []string{"zsh"}},
		{[]string{"shell", "bash", ""}, nil},
		{[]string{"scna", ""}, nil}, // an unknown command
		{[]string{"--quiet", "scan", "--format", "t"}, []string{"text"}},
	}
	for _, tc := range tests {
		if got := Candidates(app, tc.words, testValues); !slices.Equal(got, tc.want) {
			t.Errorf("Candidates(%q) = %q, want %q", tc.words, got, tc.want)
		}
	}
}

func TestRequest(t *testing.T) {
	tests := []struct {
		args  []string
		words []string
		ok    bool
	}{
		{[]string{"prog", "scan", "x"}, nil, false},
		{[]string{"prog"}, nil, false},
		{[]string{"prog", Command}, []string{}, true},
		{[]string{"prog", Command, "--", "scan", ""}, []string{"scan", ""}, true},
		{[]string{"prog", Command, "scan", "--format"}, []string{"scan", "--format"}, true},
		// PowerShell: the word under the cursor first, possibly empty.
		{[]string{"prog", Command, "--cur=", "--", "scan", "--format"}, []string{"scan", "--format", ""}, true},
		{[]string{"prog", Command, "--cur=--fo", "--", "scan"}, []string{"scan", "--fo"}, true},
		// An old script: the words before the cursor, then the flag,
		// wherever a flag that takes a value would have swallowed it.
		{[]string{"prog", "scan", "--yes", "--ticket", LegacyFlag}, []string{"scan", "--yes", "--ticket", ""}, true},
		{[]string{LegacyFlag}, nil, false}, // the program name, not a flag
	}
	for _, tc := range tests {
		words, ok := Request(tc.args)
		if ok != tc.ok || !slices.Equal(words, tc.words) {
			t.Errorf("Request(%q) = %q, %v; want %q, %v", tc.args, words, ok, tc.words, tc.ok)
		}
	}
}

// TestWriteNeverRuns: the words of a command line that would run an
// action print candidates, one per line, and run nothing.
func TestWriteNeverRuns(t *testing.T) {
	app := testApp(t)
	var b bytes.Buffer
	Write(&b, app, []string{"scan", "--yes", "--format", "j"}, testValues)
	if got, want := b.String(), "json\njsonl\n"; got != want {
		t.Errorf("Write = %q, want %q", got, want)
	}
}
