package main

// Shell completion (issue 15 item 6): candidates come from a hidden entry
// point that never runs a command. Checked in-process, and in real bash,
// zsh and fish against the lab, which must see no WinRM command and no
// SMTP recipient while TAB is pressed.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/clicomplete"
	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/internal/needs"
	"github.com/relaylock/relaylock/internal/shellquote"
)

func complete(t *testing.T, words ...string) []string {
	t.Helper()
	code, out, errs := runCLI(t, "", append([]string{clicomplete.Command, "--"}, words...)...)
	if code != 0 || errs != "" {
		t.Fatalf("__complete %q: exit %d, stderr %q", words, code, errs)
	}
	return strings.Fields(out)
}

func TestCompletionCandidates(t *testing.T) {
	tests := []struct {
		words []string
		want  []string // all present
		exact bool
	}{
		{[]string{""}, []string{"audit", "fix", "remediate", "rollback", "demo", "lab", "completion", "help"}, false},
		{[]string{"re"}, []string{"remediate", "report"}, true},
		{[]string{"audit", "--dn"}, []string{"--dns-server"}, true},
		{[]string{"audit", "--form"}, []string{"--format"}, true},
		{[]string{"audit", "--format", ""}, []string{"text", "json", "jsonl", "csv"}, true},
		{[]string{"audit", "--format", "=", "j"}, []string{"json", "jsonl"}, true}, // bash splits at "="
		{[]string{"audit", "--format=c"}, []string{"--format=csv"}, true},
		{[]string{"inspect", "--format", ""}, []string{"text", "json"}, true},
		{[]string{"verify", "--format", ""}, []string{"text", "json"}, true},
		{[]string{"demo", "--platform", "exchange20"}, []string{"exchange2003", "exchange2016", "exchange2019"}, false},
		{[]string{"lab", "--platform", ""}, []string{"iis", "exchange2019"}, false},
		{[]string{"fix", "corp.example", "--restart", ""}, []string{"ask", "never", "always"}, true},
		{[]string{"remediate", "--winrm-auth", "k"}, []string{"kerberos"}, true},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish", "powershell"}, true},
		{[]string{"help", "ro"}, []string{"rollback"}, true},
		{[]string{"-"}, []string{"--quiet", "--version", "--help"}, false},
		// A free value or an argument: nothing, so the shell offers files.
		{[]string{"fix", "corp.example", "--yes", "--ticket", ""}, nil, true},
		{[]string{"audit", "--client", ""}, nil, true},
		{[]string{"audti", ""}, nil, true},
	}
	for _, tc := range tests {
		got := complete(t, tc.words...)
		if tc.exact {
			if !slices.Equal(sorted(got), sorted(tc.want)) {
				t.Errorf("complete %q = %q, want %q", tc.words, got, tc.want)
			}
			continue
		}
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("complete %q = %q, lacks %q", tc.words, got, w)
			}
		}
	}
	// The PowerShell script's form: the cursor's word first, possibly empty.
	if code, out, _ := runCLI(t, "", clicomplete.Command, "--cur=", "--", "audit", "--format"); code != 0 || strings.Fields(out)[0] != "text" {
		t.Errorf("__complete --cur= -- audit --format: %q", out)
	}
	if code, out, _ := runCLI(t, "", clicomplete.Command, "--cur=--dn", "--", "audit"); code != 0 || strings.TrimSpace(out) != "--dns-server" {
		t.Errorf("__complete --cur=--dn -- audit: %q", out)
	}
	// Every visible flag of every command is offered.
	app := newApp(&env{})
	for _, c := range app.Commands {
		got := complete(t, c.Name, "-")
		for _, want := range clicomplete.FlagNames(c.Flags) {
			if !slices.Contains(got, want) {
				t.Errorf("complete %s -: lacks %s", c.Name, want)
			}
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// completionLab starts an open IIS lab and returns it with the words of a
// fix command against it, up to the point where TAB is pressed.
func completionLab(t *testing.T) (*labRun, []string) {
	lr := startLab(t, lab.NewIIS(lab.IISAllExceptEmpty))
	_, smtpPort, _ := net.SplitHostPort(lr.lab.SMTPAddr)
	words := []string{"fix", lr.lab.Domain, "--dns-server", lr.lab.DNSAddr, "--ports", smtpPort,
		"--winrm-host", lr.lab.MXHost + "=" + net.JoinHostPort(lr.lab.WinRMHost, fmt.Sprint(lr.lab.WinRMPort)),
		"--winrm-user", lr.lab.User, "--winrm-ca", lr.ca, "--winrm-server-name", lr.lab.TLSServerName,
		"--allow", "192.0.2.10", "--no-loopback", "--restart", "always", "--evidence", filepath.Join(lr.dir, "ev.json"),
		"--yes", "--ticket"}
	return lr, words
}

// assertUntouched fails if the lab saw anything or an evidence file exists.
func assertUntouched(t *testing.T, lr *labRun, state0 string) {
	t.Helper()
	if logs := lr.logText(); logs != "" {
		t.Errorf("completion reached the lab:\n%s", logs)
	}
	if n, m, k := len(lr.lab.WinRM.Calls()), len(lr.lab.SMTP.Sessions()), len(lr.lab.DNS.Queries()); n+m+k > 0 {
		t.Errorf("completion reached the lab: %d WinRM call(s), %d SMTP session(s), %d DNS queries", n, m, k)
	}
	if s := stateOf(t, lr.lab.Host); s != state0 {
		t.Errorf("completion changed the lab host:\nbefore %s\nafter  %s", state0, s)
	}
	if _, err := os.Stat(filepath.Join(lr.dir, "ev.json")); err == nil {
		t.Error("completion wrote the evidence file")
	}
}

// TestCompletionNeverRuns: TAB after `fix ... --yes --ticket ` ran the fix
// through the old script's --generate-bash-completion; neither that form
// nor the new entry point may run anything.
func TestCompletionNeverRuns(t *testing.T) {
	lr, words := completionLab(t)
	state0 := stateOf(t, lr.lab.Host)
	for _, args := range [][]string{
		append(slices.Clone(words), clicomplete.LegacyFlag),                                          // an old script, value pending
		append(append(slices.Clone(words), "CHG-1"), clicomplete.LegacyFlag),                         // an old script, after a value
		append([]string{clicomplete.Command, "--"}, append(slices.Clone(words), "")...),              // the new entry point
		append([]string{clicomplete.Command}, append(slices.Clone(words), "CHG-1", "")...),           // without "--"
		{"audit", "--dns-server", lr.lab.DNSAddr, lr.lab.Domain, "--client", clicomplete.LegacyFlag}, // audit ... --client <TAB>
	} {
		code, _, stderr := lr.run(labTestPassword, args...)
		if code != 0 {
			t.Errorf("%q: exit %d\n%s", args, code, stderr)
		}
	}
	assertUntouched(t, lr, state0)
}

// binDir builds relaylock and returns a PATH that finds it first.
func binPATH(t *testing.T) string {
	return filepath.Dir(relaylockBinary(t)) + string(os.PathListSeparator) + os.Getenv("PATH")
}

// TestCompletionInBash sources the printed script in a real bash and calls
// its completion function as bash does on TAB (COMP_WORDS, COMP_CWORD).
func TestCompletionInBash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds relaylock")
	}
	needTool(t, "bash")
	lr, words := completionLab(t)
	state0 := stateOf(t, lr.lab.Host)
	path := binPATH(t)
	compl := func(ws ...string) []string {
		t.Helper()
		script := "source <(relaylock completion bash) || exit 9\n" +
			"COMP_WORDS=(relaylock " + shellquote.Join(ws) + ")\nCOMP_CWORD=" + fmt.Sprint(len(ws)) + "\n" +
			"_relaylock_complete\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n" +
			"complete -p relaylock\n"
		cmd := exec.Command("bash", "--norc", "--noprofile", "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+path, "RELAYLOCK_WINRM_PASSWORD="+labTestPassword)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if last := lines[len(lines)-1]; !strings.Contains(last, "-F _relaylock_complete") {
			t.Fatalf("completion not registered: %q", last)
		}
		return slices.DeleteFunc(lines[:len(lines)-1], func(s string) bool { return s == "" })
	}
	if got := compl("audit", "--dn"); !slices.Equal(got, []string{"--dns-server"}) {
		t.Errorf("audit --dn<TAB> = %q", got)
	}
	if got := compl("demo", "--platform", "exchange201"); !slices.Contains(got, "exchange2019") {
		t.Errorf("demo --platform exchange201<TAB> = %q", got)
	}
	if got := compl("audit", "--format", "=", "j"); !slices.Equal(got, []string{"json", "jsonl"}) {
		t.Errorf("audit --format=j<TAB> = %q", got)
	}
	if got := compl("rem"); !slices.Equal(got, []string{"remediate"}) {
		t.Errorf("rem<TAB> = %q", got)
	}
	// The press that ran the fix, and the one that ran a full probe.
	if got := compl(append(slices.Clone(words), "")...); len(got) != 0 {
		t.Errorf("fix ... --ticket <TAB> offered %q, want nothing (files)", got)
	}
	compl("audit", "--dns-server", lr.lab.DNSAddr, lr.lab.Domain, "--client", "")
	assertUntouched(t, lr, state0)
}

// TestCompletionInZsh types into an interactive zsh on a pseudo-terminal,
// presses TAB, and reads the completed line back with echo.
func TestCompletionInZsh(t *testing.T) {
	if testing.Short() {
		t.Skip("builds relaylock")
	}
	needTool(t, "zsh")
	lr, words := completionLab(t)
	state0 := stateOf(t, lr.lab.Host)
	home := t.TempDir()
	cmd := exec.Command("zsh", "-f", "-i")
	cmd.Env = append(os.Environ(), "PATH="+binPATH(t), "HOME="+home, "ZDOTDIR="+home, "EDITOR=", "VISUAL=", "TERM=dumb",
		"RELAYLOCK_WINRM_PASSWORD="+labTestPassword, "PS1=%% ")
	term, err := startPTY(cmd)
	if err != nil {
		needs.Missing(t, "a pseudo-terminal", err.Error())
	}
	defer func() { term.Close(); cmd.Process.Kill(); cmd.Wait() }()
	var screen syncBuffer
	go io.Copy(&screen, term)
	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(screen.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("zsh: no %q; screen:\n%s", what, screen.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	send := func(s string) {
		if _, err := term.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send("autoload -U compinit && compinit -u && source <(relaylock completion zsh) && echo READY-$((6*7))\r")
	waitFor("READY-42")
	// Complete, go to the start of the line (Ctrl-A), make it an echo.
	try := func(mark, line string) {
		t.Helper()
		send(line + "\t")
		time.Sleep(1500 * time.Millisecond)
		send("\x01echo " + mark + " \r")
		waitFor(mark + " relaylock")
	}
	try("M1", "relaylock audit --dn")
	try("M2", "relaylock demo --platform exchange2019")
	try("M3", "relaylock "+shellquote.Join(words)+" ")
	send("exit\r")
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	s := screen.String()
	if !strings.Contains(s, "M1 relaylock audit --dns-server") {
		t.Errorf("zsh did not complete --dn to --dns-server:\n%s", s)
	}
	if !strings.Contains(s, "M2 relaylock demo --platform exchange2019") {
		t.Errorf("zsh: demo --platform exchange2019 changed:\n%s", s)
	}
	assertUntouched(t, lr, state0)
}

// TestCompletionInFish asks a real fish for the completions of a line.
func TestCompletionInFish(t *testing.T) {
	if testing.Short() {
		t.Skip("builds relaylock")
	}
	needTool(t, "fish")
	lr, words := completionLab(t)
	state0 := stateOf(t, lr.lab.Host)
	compl := func(line string) []string {
		t.Helper()
		cmd := exec.Command("fish", "--no-config", "-c", "relaylock completion fish | source; complete -C "+shellquote.Quote(line))
		cmd.Env = append(os.Environ(), "PATH="+binPATH(t), "HOME="+t.TempDir(), "RELAYLOCK_WINRM_PASSWORD="+labTestPassword)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		go func() { <-ctx.Done(); cmd.Process.Kill() }()
		if err := cmd.Run(); err != nil {
			t.Fatalf("fish: %v\n%s%s", err, out.String(), errb.String())
		}
		var got []string
		for _, l := range strings.Split(out.String(), "\n") {
			if f, _, _ := strings.Cut(l, "\t"); f != "" {
				got = append(got, f)
			}
		}
		return got
	}
	if got := compl("relaylock audit --dn"); !slices.Contains(got, "--dns-server") {
		t.Errorf("fish: audit --dn = %q", got)
	}
	if got := compl("relaylock audit --format "); !slices.Contains(got, "csv") {
		t.Errorf("fish: audit --format = %q", got)
	}
	compl("relaylock " + shellquote.Join(words) + " ")
	assertUntouched(t, lr, state0)
}
