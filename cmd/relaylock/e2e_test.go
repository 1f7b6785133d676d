package main

// End-to-end tests of the whole job, as users run it: the built binary,
// the in-process lab on loopback, the PDF checked with pdftotext.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"crypto/rand"
	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/internal/needs"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// removeBuiltBinary removes what relaylockBinary built (TestMain calls it).
func removeBuiltBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// relaylockBinary builds the command once per test binary, into a
// directory TestMain removes.
func relaylockBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "relaylock-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "relaylock")
		if runtime.GOOS == "windows" {
			binPath += ".exe"
		}
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// needTool skips when a tool is missing, except in CI where it must exist.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		needs.Missing(t, name, "not on PATH; .ci/setup.d installs it")
	}
}

func pdfText(t *testing.T, pdf string) string {
	t.Helper()
	out, err := exec.Command("pdftotext", "-layout", pdf, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext %s: %v\n%s", pdf, err, out)
	}
	return string(out)
}

// readmeDemoCommand returns the demo command line the README gives a
// newcomer, so the test runs exactly that.
func readmeDemoCommand(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "go run ./cmd/relaylock demo") {
			return strings.Fields(line)
		}
	}
	t.Fatal("README.md does not show `go run ./cmd/relaylock demo`")
	return nil
}

// TestDemoAsReadmeSays runs the README's demo command for each platform
// and checks that the report shows the relay open before and closed after.
func TestDemoAsReadmeSays(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the demo")
	}
	needTool(t, "pdftotext")
	args := readmeDemoCommand(t)
	if args[0] != "go" || args[1] != "run" || args[2] != "./cmd/relaylock" {
		t.Fatalf("unexpected README demo command %q", args)
	}
	bin := relaylockBinary(t)
	// The platforms the README names first; the demo takes every lab
	// platform (TestDemoAcceptsLabPlatforms).
	for _, platform := range []string{"iis", "exchange2003", "exchange2016", "exchange2010"} {
		t.Run(platform, func(t *testing.T) {
			out := t.TempDir()
			cmd := exec.Command(bin, append(args[3:], "--platform", platform, "--out", out)...)
			cmd.Dir = "../.."
			cmd.Env = append(os.Environ(), "RELAYLOCK_WINRM_PASSWORD=") // the demo makes its own
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			if err := cmd.Run(); err != nil {
				t.Fatalf("demo --platform %s: %v\nstdout:\n%s\nstderr:\n%s", platform, err, stdout.String(), stderr.String())
			}
			t.Logf("demo %s took %s", platform, time.Since(start))
			pdf := filepath.Join(out, "demo-report.pdf")
			ev := filepath.Join(out, "demo-evidence.json")
			for _, f := range []string{pdf, ev} {
				if _, err := os.Stat(f); err != nil {
					t.Fatalf("demo did not write %s: %v", f, err)
				}
			}
			// The fix prints a rollback command for the demo's lab, which
			// is gone when the demo ends: the demo must say so, and name a
			// lab that can be used instead.
			if strings.Contains(stdout.String(), "rollback command:") &&
				!strings.Contains(stdout.String(), "The demo's lab has stopped, so the rollback command above no longer applies.") {
				t.Errorf("demo prints a rollback command for its stopped lab without saying it no longer applies:\n%s", stdout.String())
			}
			// The lab named to try the commands is prepared as the demo's
			// was (WinRM 2.0's quota raised on Exchange 2007/2010), so its
			// printed commands work (TestLabPrintedCommandsWinRM2).
			tryLab := "relaylock lab --platform " + platform
			if platform == "exchange2010" {
				tryLab += " --max-memory-per-shell-mb 1024"
			}
			if !strings.Contains(stdout.String(), tryLab+"\n") {
				t.Errorf("demo does not name the lab %q to try the commands against:\n%s", tryLab, stdout.String())
			}
			// Built and run as a binary, the demo names it relaylock (with
			// go run it prints go run ./cmd/relaylock: TestDemoProgram).
			if !strings.Contains(stdout.String(), "(check it with: relaylock verify "+ev+")") {
				t.Errorf("demo does not print the verify command for %s:\n%s", ev, stdout.String())
			}
			// fix's progress steps count up to one total.
			var total string
			prev := 0
			for _, m := range regexp.MustCompile(`step (\d+)/(\d+):`).FindAllStringSubmatch(stderr.String(), -1) {
				n, _ := strconv.Atoi(m[1])
				if total == "" {
					total = m[2]
				}
				if m[2] != total || n < prev || n > prev+1 {
					t.Errorf("step %s/%s after step %d/%s:\n%s", m[1], m[2], prev, total, stderr.String())
				}
				prev = n
			}
			if total == "" || strconv.Itoa(prev) != total {
				t.Errorf("the steps end at %d of %q:\n%s", prev, total, stderr.String())
			}
			if !strings.Contains(stdout.String(), "before open") || !strings.Contains(stdout.String(), "after closed") {
				t.Errorf("demo summary does not say open before and closed after:\n%s", stdout.String())
			}
			text := pdfText(t, pdf)
			if !regexp.MustCompile(`(?i)\bopen\b`).MatchString(text) || !regexp.MustCompile(`(?i)\bclosed\b`).MatchString(text) {
				t.Errorf("report text lacks open/closed words")
			}
			if !regexp.MustCompile(`(?s)OPEN.{0,80}CLOSED`).MatchString(text) {
				t.Errorf("report does not show a host OPEN before and CLOSED after")
			}
			b, err := evidence.Load(ev)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Changes) != 1 || b.Changes[0].Result != remediate.ResultApplied || len(b.Backups) != 1 {
				t.Errorf("evidence: %d change(s) (%v), %d backup(s); want one applied change and one backup", len(b.Changes), changeResults(b), len(b.Backups))
			}
			if _, vr, err := evidence.LoadVerified(ev); err != nil {
				t.Error(err)
			} else {
				assertLinked(t, b, vr)
			}
			// The password is the lab's own and never appears in any file.
			assertNoSecretInDir(t, out, "Lab-")
			// verify accepts the evidence and the report.
			vout, err := exec.Command(bin, "verify", ev).CombinedOutput()
			if err != nil {
				t.Errorf("relaylock verify: %v\n%s", err, vout)
			}
		})
	}
}

func changeResults(b *evidence.Bundle) []string {
	var s []string
	for _, c := range b.Changes {
		s = append(s, string(c.Result))
	}
	return s
}

// assertNoSecretInDir fails if a lab password (a prefix followed by 24 hex
// digits) occurs in any file in dir.
func assertNoSecretInDir(t *testing.T, dir, prefix string) {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(prefix) + `[0-9a-f]{24}`)
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && re.Match(b) {
			t.Errorf("%s contains the lab password", p)
		}
		return nil
	})
}

// TestFixThroughTerminal drives `relaylock fix` through a pseudo-terminal
// against the lab, answers the confirmation prompt, and checks the
// evidence and the PDF.
func TestFixThroughTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs relaylock")
	}
	needTool(t, "pdftotext")
	bin := relaylockBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	password := "Pty-" + rand.Text()
	l, err := lab.Start(ctx, lab.Config{Platform: "exchange2016", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, l.CACertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ev, pdf := filepath.Join(dir, "evidence.json"), filepath.Join(dir, "report.pdf")
	_, smtpPort, _ := net.SplitHostPort(l.SMTPAddr)
	cmd := exec.CommandContext(ctx, bin, "fix", l.Domain,
		"--dns-server", l.DNSAddr, "--ports", smtpPort,
		"--winrm-host", l.MXHost+"="+net.JoinHostPort(l.WinRMHost, fmt.Sprint(l.WinRMPort)),
		"--winrm-user", l.User, "--winrm-ca", ca, "--winrm-server-name", l.TLSServerName,
		"--allow", "192.0.2.25", "--restart", "never",
		"--client", "PTY Test Client", "--evidence", ev, "-o", pdf)
	cmd.Env = append(os.Environ(), "RELAYLOCK_WINRM_PASSWORD="+password)
	term, err := startPTY(cmd)
	if err != nil {
		needs.Missing(t, "a pseudo-terminal", err.Error())
	}
	defer term.Close()
	var transcript bytes.Buffer
	prompted := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(term)
		var line []byte
		once := sync.Once{}
		for {
			b, err := r.ReadByte()
			if err != nil {
				return
			}
			transcript.WriteByte(b)
			line = append(line, b)
			if bytes.Contains(line, []byte("[y/N]")) {
				once.Do(func() { close(prompted) })
				line = line[:0]
			}
			if b == '\n' {
				line = line[:0]
			}
		}
	}()
	select {
	case <-prompted:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("no confirmation prompt; terminal said:\n%s", transcript.String())
	}
	if _, err := term.Write([]byte("y\r")); err != nil {
		t.Fatal(err)
	}
	werr := cmd.Wait()
	<-done
	if werr != nil {
		t.Fatalf("fix: %v\nterminal:\n%s", werr, transcript.String())
	}
	out := transcript.String()
	for _, want := range []string{"Plan for", "Apply these", "after closed", "Report:"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, password) {
		t.Error("the WinRM password was echoed to the terminal")
	}
	b, err := evidence.Load(ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Changes) != 1 || b.Changes[0].Result != "applied" || b.Changes[0].WinRMUser != l.User {
		t.Errorf("evidence changes = %+v", b.Changes)
	}
	if b.Engagement.Client != "PTY Test Client" {
		t.Errorf("engagement client = %q", b.Engagement.Client)
	}
	var purposes []string
	for _, a := range b.Audits {
		purposes = append(purposes, string(a.Purpose)+":"+string(a.Result.Verdict))
	}
	if strings.Join(purposes, ",") != "audit:open,retest:closed" {
		t.Errorf("audits = %v, want audit:open,retest:closed", purposes)
	}
	text := pdfText(t, pdf)
	for _, want := range []string{"PTY Test Client", "EXCH-ANON-RELAY"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
