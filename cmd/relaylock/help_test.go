package main

// The flag surface never drifts silently: the help of relaylock and of
// every command is kept in testdata/help, and a change to a flag, a
// default, a usage line or a command shows here as a diff. After a
// deliberate change, regenerate with
//
//	go test ./cmd/relaylock -run TestHelpGolden -update

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/internal/clicomplete"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestHelpGolden(t *testing.T) {
	names := []string{"relaylock"}
	for _, c := range newApp(&env{}).Commands {
		names = append(names, c.Name)
	}
	seen := map[string]bool{}
	for _, name := range names {
		args := []string{"relaylock", "help"}
		if name != "relaylock" {
			args = []string{"relaylock", name, "--help"}
		}
		var stdout, stderr strings.Builder
		e := &env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
		if code := run(context.Background(), args, e); code != exitOK || stderr.Len() > 0 {
			t.Fatalf("%q: exit %d\n%s", args, code, stderr.String())
		}
		file := filepath.Join("testdata", "help", name+".golden")
		seen[filepath.Base(file)] = true
		if *update {
			if err := os.WriteFile(file, []byte(stdout.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v (a new command? run with -update)", err)
		}
		if got := stdout.String(); got != string(want) {
			t.Errorf("%q prints other help than %s (run with -update after a deliberate change):\n%s", args, file, lineDiff(string(want), got))
		}
	}
	// A command that is gone leaves no golden file behind.
	files, _ := filepath.Glob(filepath.Join("testdata", "help", "*.golden"))
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s is the help of no command", f)
		}
	}
}

// lineDiff names the first line where got and want differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + itoa(i+1) + ":\n want " + wl + "\n  got " + gl
		}
	}
	return ""
}

// The completion scripts (files in completion/) call the entry point the
// CLI answers.
func TestCompletionScriptsCallEntryPoint(t *testing.T) {
	for _, s := range []string{bashCompletion, zshCompletion, fishCompletion, powershellCompletion} {
		if !strings.Contains(s, " "+clicomplete.Command+" ") {
			t.Errorf("script does not call %s:\n%s", clicomplete.Command, s)
		}
	}
}
