package main

// The README's exit-code and command tables, checked against the code
// (issue 15 item 8): every documented code is produced by a real run, every
// command's help lists the codes the README gives it, and every code the
// CLI defines is documented.

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit/smtptest"
	"github.com/relaylock/relaylock/internal/lab"
)

// pendingExitCodes are rows of the README table whose code is implemented
// on another branch (the agreed table). When a code gets its constant in
// internal/engagement/env.go, this test fails until the entry is removed and cases for the
// code are added to exitCases.
var pendingExitCodes = map[int]string{}

// readmeTable returns the rows of the first Markdown table after heading.
func readmeTable(t *testing.T, heading string) [][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q", heading)
	}
	var rows [][]string
	inTable := false
	for _, line := range strings.Split(s[i+len(heading)+2:], "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		if strings.HasPrefix(cells[0], "---") {
			continue
		}
		rows = append(rows, cells)
	}
	if len(rows) < 2 {
		t.Fatalf("README: no table after %q", heading)
	}
	return rows[1:] // without the header row
}

// exitConstants reads the exit code constants from where they are
// defined, internal/engagement/env.go.
func exitConstants(t *testing.T) map[int]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../../internal/engagement/env.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, sp := range gd.Specs {
			vs := sp.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "Exit") || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.INT {
					v, _ := strconv.Atoi(lit.Value)
					out[v] = n.Name
				}
			}
		}
	}
	return out
}

type exitCase struct {
	name string
	run  func(t *testing.T) (code int, stdout, stderr string)
}

func runs(args ...string) func(t *testing.T) (int, string, string) {
	return func(t *testing.T) (int, string, string) { return runCLI(t, labTestPassword, args...) }
}

// onLab starts a lab host and runs the words args returns against it.
func onLab(host func() lab.Host, args func(lr *labRun) []string) func(t *testing.T) (int, string, string) {
	return func(t *testing.T) (int, string, string) {
		lr := startLab(t, host())
		return lr.run(labTestPassword, args(lr)...)
	}
}

func fixArgs(lr *labRun, extra ...string) []string {
	_, smtpPort, _ := net.SplitHostPort(lr.lab.SMTPAddr)
	return append([]string{"fix", lr.lab.Domain, "--dns-server", lr.lab.DNSAddr, "--ports", smtpPort,
		"--winrm-host", lr.lab.MXHost + "=" + net.JoinHostPort(lr.lab.WinRMHost, fmt.Sprint(lr.lab.WinRMPort)),
		"--winrm-user", lr.lab.User, "--winrm-ca", lr.ca, "--winrm-server-name", lr.lab.TLSServerName,
		"--allow", "192.0.2.10", "--no-loopback", "--restart", "never",
		"--evidence", filepath.Join(lr.dir, "ev.json"), "-o", filepath.Join(lr.dir, "r.pdf")}, extra...)
}

func exitCases(t *testing.T) map[int][]exitCase {
	open := smtptest.Serve(t, smtptest.Open())
	closed := smtptest.Serve(t, smtptest.Closed554())
	probe := []string{"--helo", "probe.example.net", "--mail-domain", "example.com"}
	dir := t.TempDir()
	ev := copyFixture(t, dir)
	tampered := filepath.Join(dir, "tampered.json")
	if b, err := os.ReadFile(ev); err == nil {
		os.WriteFile(tampered, []byte(strings.Replace(string(b), `"purpose": "retest"`, `"purpose": "retesT"`, 1)), 0o600)
	}
	iisOpen := func() lab.Host { return lab.NewIIS(lab.IISAllExceptEmpty) }
	return map[int][]exitCase{
		exitOK: {
			{"audit: closed", runs(append([]string{"audit", closed}, probe...)...)},
			{"verify: every hash matches", runs("verify", ev)},
			{"completion bash", runs("completion", "bash")},
			{"fix: the relay is closed", onLab(iisOpen, func(lr *labRun) []string { return fixArgs(lr, "--yes") })},
		},
		exitError: {
			{"verify: a changed byte", runs("verify", tampered)},
			{"report: no such evidence", runs("report", "--evidence", filepath.Join(dir, "missing.json"), "-o", filepath.Join(dir, "x.pdf"))},
			{"inspect: nothing listens", runs("inspect", "--winrm-host", "127.0.0.1", "--winrm-port", "1", "--winrm-user", "u", "--winrm-http")},
		},
		exitUsage: {
			{"unknown command", runs("audti", "x")},
			{"help for an unknown command", runs("help", "audti")},
			{"unknown flag", runs("audit", "--nope", "x")},
			{"fix --allow 0.0.0.0/0", runs("fix", "corp.example", "--allow", "0.0.0.0/0", "--yes")},
			{"completion for an unknown shell", runs("completion", "tcsh")},
			{"remediate without a host", runs("remediate", "--allow", "192.0.2.1")},
		},
		exitOpen: {
			{"audit: open", runs(append([]string{"audit", open}, probe...)...)},
			{"inspect: a finding", onLab(iisOpen, func(lr *labRun) []string { return append([]string{"inspect"}, lr.winrmArgs()...) })},
			// Its help: "3 open and nothing applied (declined, or --yes
			// missing while stdin is not a terminal)".
			{"fix: no --yes, stdin not a terminal", onLab(iisOpen, func(lr *labRun) []string { return fixArgs(lr) })},
			{"remediate: no --yes, stdin not a terminal", onLab(iisOpen, func(lr *labRun) []string {
				return append(append([]string{"remediate", "--allow", "192.0.2.10"}, lr.winrmArgs()...), lr.probeArgs()...)
			})},
			{"rollback: the re-test is open again", onLab(iisOpen, func(lr *labRun) []string {
				bk := filepath.Join(lr.dir, "b.json")
				rem := append(append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes", "--restart", "never", "--backup", bk}, lr.winrmArgs()...), lr.probeArgs()...)
				if code, out, errOut := lr.run(labTestPassword, rem...); code != exitOK {
					t.Fatalf("remediate: exit %d\n%s\n%s", code, out, errOut)
				}
				return append([]string{"rollback", "--backup", bk}, lr.winrmArgs()...)
			})},
		},
		exitStillOpen: {
			{"remediate: the Guest logon still relays", onLab(func() lab.Host { return lab.NewIIS(lab.IISAuthGuest) }, func(lr *labRun) []string {
				return append(append([]string{"remediate", "--allow", "127.0.0.2", "--no-loopback", "--yes", "--restart", "never",
					"--backup", filepath.Join(lr.dir, "b.json")}, lr.winrmArgs()...), lr.probeArgs()...)
			})},
		},
		exitInconclusive: {
			{"remediate: the re-test cannot reach the SMTP endpoint", onLab(iisOpen, func(lr *labRun) []string {
				return append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes", "--restart", "never",
					"--smtp-target", "127.0.0.1:1", "--mail-domain", lr.lab.Domain, "--timeout", "5s",
					"--backup", filepath.Join(lr.dir, "b.json")}, lr.winrmArgs()...)
			})},
		},
		exitEvidence: {
			{"audit: closed, another host's run takes the evidence lock while the probe runs", func(t *testing.T) (int, string, string) {
				ev := copyFixture(t, t.TempDir())
				beforeEvidenceWrite = func(p string) {
					os.WriteFile(p+".lock", []byte("pid 4242 host other-host.example since 2026-01-01T00:00:00Z\n"), 0o600)
				}
				t.Cleanup(func() { beforeEvidenceWrite = nil })
				return runCLI(t, "", append([]string{"audit", closed, "--evidence", ev}, probe...)...)
			}},
		},
		exitCancelled: {
			{"audit: Ctrl-C while a server stalls", func(t *testing.T) (int, string, string) {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				go func() { // accept and never greet
					for {
						c, err := l.Accept()
						if err != nil {
							return
						}
						defer c.Close()
					}
				}()
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(300*time.Millisecond, cancel)
				e, out, errb := labEnv("")
				code := run(ctx, append([]string{"relaylock", "audit", l.Addr().String()}, probe...), e)
				return code, out.String(), errb.String()
			}},
		},
	}
}

func TestExitCodesAsREADME(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every command against the lab")
	}
	consts := exitConstants(t)
	readme := map[int]bool{}
	for _, row := range readmeTable(t, "## Exit codes") {
		code, err := strconv.Atoi(row[0])
		if err != nil {
			t.Fatalf("README exit code %q", row[0])
		}
		readme[code] = true
		if _, ok := consts[code]; !ok {
			if _, pending := pendingExitCodes[code]; !pending {
				t.Errorf("README documents exit code %d, which the CLI does not define", code)
			}
		}
	}
	for code, name := range consts {
		if !readme[code] {
			t.Errorf("%s = %d is not in the README's exit-code table", name, code)
		}
		if why, ok := pendingExitCodes[code]; ok {
			t.Errorf("exit code %d (%s) is implemented now (%s): remove it from pendingExitCodes and add its cases", code, why, name)
		}
	}
	cases := exitCases(t)
	for code, name := range consts {
		if len(cases[code]) == 0 {
			t.Errorf("no test case for exit code %d (%s)", code, name)
		}
	}
	for code, cs := range cases {
		for _, tc := range cs {
			t.Run(fmt.Sprintf("%d/%s", code, tc.name), func(t *testing.T) {
				got, out, errOut := tc.run(t)
				if got != code {
					t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", got, code, out, errOut)
				}
			})
		}
	}
}

// helpExitCodes returns the codes listed after "Exit codes:" in a
// command's help.
func helpExitCodes(c string) []int {
	i := strings.Index(c, "Exit codes:")
	if i < 0 {
		return nil
	}
	var out []int
	for _, m := range regexp.MustCompile(`(?:^|;)\s*(\d+)\s`).FindAllStringSubmatch(c[i+len("Exit codes:"):], -1) {
		v, _ := strconv.Atoi(m[1])
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

func TestCommandsTableAsREADME(t *testing.T) {
	app := newApp(&env{})
	rows := readmeTable(t, "## Commands")
	inREADME := map[string]bool{}
	for _, row := range rows {
		name := strings.Trim(row[0], "`")
		inREADME[name] = true
		c := app.Command(name)
		if c == nil {
			t.Errorf("README lists %q, which is not a command", name)
			continue
		}
		var want []int
		for _, f := range strings.Split(row[2], ",") {
			v, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatalf("README: %s exit codes %q", name, row[2])
			}
			want = append(want, v)
		}
		slices.Sort(want)
		if got := helpExitCodes(c.UsageText + "\n" + c.Description); !slices.Equal(got, want) {
			t.Errorf("%s: help lists exit codes %v, README %v", name, got, want)
		}
		for _, code := range want {
			if _, ok := exitConstants(t)[code]; !ok {
				if _, pending := pendingExitCodes[code]; !pending {
					t.Errorf("%s: README lists exit code %d, which the CLI does not define", name, code)
				}
			}
		}
	}
	for _, c := range app.Commands {
		if !c.Hidden && c.Name != "help" && !inREADME[c.Name] {
			t.Errorf("command %s is not in the README's command table", c.Name)
		}
	}
}
