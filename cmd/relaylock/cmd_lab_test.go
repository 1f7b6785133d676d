package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
)

// syncBuffer is a bytes.Buffer safe for a writer and a polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func labEnv(password string) (*env, *syncBuffer, *syncBuffer) {
	var out, errb syncBuffer
	return &env{
		Stdin:  strings.NewReader(""),
		Stdout: &out,
		Stderr: &errb,
		Getenv: func(k string) string {
			if k == "RELAYLOCK_WINRM_PASSWORD" {
				return password
			}
			return ""
		},
	}, &out, &errb
}

// TestLabCommand runs `relaylock lab` until interrupted: it prints every
// service, writes the CA to a 0600 file and removes it on exit.
func TestLabCommand(t *testing.T) {
	for _, password := range []string{"", "Chosen-Lab-Pw1"} {
		t.Run("password="+password, func(t *testing.T) {
			platform := "iis"
			if len(lab.Platforms()) == 0 {
				t.Fatal("no lab platform registered")
			}
			e, out, errb := labEnv(password)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			codec := make(chan int, 1)
			go func() {
				codec <- run(ctx, []string{"relaylock", "lab", "--platform", platform, "--domain", "contoso.test"}, e)
			}()
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(out.String(), "Press Ctrl-C") {
				if time.Now().After(deadline) {
					t.Fatalf("no banner: stdout %q stderr %q", out.String(), errb.String())
				}
				select {
				case code := <-codec:
					t.Fatalf("lab exited %d: %s", code, errb.String())
				case <-time.After(20 * time.Millisecond):
				}
			}
			text := out.String()
			for _, want := range []string{"  DNS    127.0.0.1:", "  SMTP   127.0.0.1:", "  WinRM  https://127.0.0.1:", "  user   Administrator", "MX contoso.test -> mail.contoso.test"} {
				if !strings.Contains(text, want) {
					t.Errorf("output lacks %q:\n%s", want, text)
				}
			}
			if password == "" {
				if !regexp.MustCompile(`password [A-Za-z0-9]{20} `).MatchString(text) {
					t.Errorf("generated password not printed:\n%s", text)
				}
			} else if strings.Contains(text, password) {
				t.Errorf("a password from the environment was printed:\n%s", text)
			}
			m := regexp.MustCompile(`  CA     (\S+)`).FindStringSubmatch(text)
			if m == nil {
				t.Fatalf("no CA path:\n%s", text)
			}
			st, err := os.Stat(m[1])
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("CA file %s: %v %v", m[1], st, err)
			}
			cancel()
			select {
			case code := <-codec:
				if code != exitOK && code != exitCancelled {
					t.Fatalf("exit %d: %s", code, errb.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("lab did not stop on interrupt")
			}
			if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
				t.Fatalf("CA file left behind: %v", err)
			}
		})
	}
}

func TestLabCommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--listen", "0.0.0.0"},
		{"--listen", "192.0.2.7"},
		{"--platform", "exchange1999"},
		{"--smtp-port", "70000"},
		{"--max-memory-per-shell-mb", "-1"},
		{"extra"},
	} {
		e, _, errb := labEnv("")
		if code := run(context.Background(), append([]string{"relaylock", "lab"}, args...), e); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errb.String())
		}
	}
}

// Each WinRM transport of `relaylock lab` (HTTPS, plain HTTP with
// AllowUnencrypted=true, the Windows default of HTTP with NTLM message
// encryption required) prints an inspect command, and that command, run
// as printed, reads the host.
func TestLabCommandTransports(t *testing.T) {
	for _, tc := range []struct {
		name, flag, winrm string
	}{
		{"https", "", "  WinRM  https://127.0.0.1:"},
		{"http", "--http", "  WinRM  http://127.0.0.1:"},
		{"sealed-http", "--sealed-http", "(plain HTTP, AllowUnencrypted=false: NTLM message encryption required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const pw = "Chosen-Lab-Pw1"
			e, out, errb := labEnv(pw)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			codec := make(chan int, 1)
			args := []string{"relaylock", "lab", "--listen", "127.0.0.1"}
			if tc.flag != "" {
				args = append(args, tc.flag)
			}
			go func() { codec <- run(ctx, args, e) }()
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(out.String(), "Press Ctrl-C") {
				if time.Now().After(deadline) {
					t.Fatalf("no banner: %q %q", out.String(), errb.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			text := out.String()
			if !strings.Contains(text, tc.winrm) || strings.Contains(text, "  CA ") != (tc.flag == "") {
				t.Fatalf("lab output:\n%s", text)
			}
			m := regexp.MustCompile(`(?m)^  relaylock inspect (.*)$`).FindStringSubmatch(text)
			if m == nil {
				t.Fatalf("no inspect command printed:\n%s", text)
			}
			// The lab is an open relay: inspect names the cause and exits 3.
			code, stdout, stderr := runCLI(t, pw, append([]string{"inspect"}, strings.Fields(m[1])...)...)
			if code != exitOpen || !strings.Contains(stdout, "IIS") {
				t.Fatalf("the printed command %q: exit %d\n%s\n%s", m[1], code, stdout, stderr)
			}
			// The printed doctor command passes every check on the lab.
			d := regexp.MustCompile(`(?m)^  relaylock doctor (.*)$`).FindStringSubmatch(text)
			if d == nil {
				t.Fatalf("no doctor command printed:\n%s", text)
			}
			if code, stdout, stderr := runCLI(t, pw, append([]string{"doctor"}, strings.Fields(d[1])...)...); code != exitOK {
				t.Fatalf("the printed command %q: exit %d\n%s\n%s", d[1], code, stdout, stderr)
			}
			cancel()
			if code := <-codec; code != exitOK && code != exitCancelled {
				t.Fatalf("exit %d", code)
			}
		})
	}
}

func TestLabCommandHTTPConflict(t *testing.T) {
	e, _, errb := labEnv("")
	if code := run(context.Background(), []string{"relaylock", "lab", "--http", "--sealed-http"}, e); code != exitUsage {
		t.Fatalf("exit %d, want %d (%s)", code, exitUsage, errb.String())
	}
}

// `relaylock lab` models WinRM 2.0 strictly: an Exchange 2010 lab at the
// default quota says that the Exchange shell will end out of memory and
// how the administrator raises the quota; raised, it says nothing.
func TestLabCommandWinRM2Quota(t *testing.T) {
	for _, tc := range []struct {
		args []string
		note bool
	}{
		{nil, true},
		{[]string{"--max-memory-per-shell-mb", "1024"}, false},
	} {
		e, out, errb := labEnv("Chosen-Lab-Pw1")
		ctx, cancel := context.WithCancel(context.Background())
		codec := make(chan int, 1)
		go func() {
			codec <- run(ctx, append([]string{"relaylock", "lab", "--platform", "exchange2010"}, tc.args...), e)
		}()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), "Press Ctrl-C") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-codec
		note := strings.Contains(errb.String(), "MaxMemoryPerShellMB is 150") &&
			strings.Contains(errb.String(), `winrm set winrm/config/winrs @{MaxMemoryPerShellMB="1024"}`)
		if note != tc.note {
			t.Errorf("%v: quota note %v, want %v\nstdout:\n%s\nstderr:\n%s", tc.args, note, tc.note, out.String(), errb.String())
		}
	}
}

// startLabCLI runs `relaylock` with args (a lab) until the test ends and
// returns what it printed once it is up.
func startLabCLI(t *testing.T, password string, args []string) string {
	t.Helper()
	e, out, errb := labEnv(password)
	ctx, cancel := context.WithCancel(context.Background())
	codec := make(chan int, 1)
	go func() { codec <- run(ctx, args, e) }()
	t.Cleanup(func() {
		cancel()
		if code := <-codec; code != exitOK && code != exitCancelled {
			t.Errorf("%q: exit %d\n%s", args, code, errb.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Press Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner: %q %q", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out.String()
}

// printedCommands are the relaylock commands a lab printed, each split as
// a POSIX shell splits it, by command name.
func printedCommands(t *testing.T, text string) map[string][]string {
	t.Helper()
	cmds := map[string][]string{}
	for _, m := range regexp.MustCompile(`(?m)^  relaylock (\w+) (.*)$`).FindAllStringSubmatch(text, -1) {
		words, err := splitShellWords(m[2])
		if err != nil {
			t.Fatalf("printed command %q: %v", m[0], err)
		}
		cmds[m[1]] = words
	}
	return cmds
}

// On a WinRM 2.0 platform (Exchange 2007/2010) the lab keeps WinRM 2.0's
// default quota, which ends the Exchange shell: it says so up front,
// prints only commands that work on it, and prints the command that
// starts a lab prepared as the README asks. That command, as printed,
// starts a lab whose printed commands all work as printed.
func TestLabPrintedCommandsWinRM2(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const pw = "Chosen-Lab-Pw1"
	for _, platform := range []string{"exchange2007", "exchange2010"} {
		t.Run(platform, func(t *testing.T) {
			text := startLabCLI(t, pw, []string{"relaylock", "lab", "--platform", platform, "--sealed-http"})
			try := strings.Index(text, "\nTry")
			m := regexp.MustCompile(`(?m)start: (relaylock lab .*)$`).FindStringSubmatch(text)
			if m == nil || try < 0 || strings.Index(text, m[1]) > try ||
				!strings.Contains(text[:try], "MaxMemoryPerShellMB 150") || !strings.Contains(text[:try], "the Exchange shell will not load") {
				t.Fatalf("the unprepared lab does not say up front that the Exchange shell will not load and how to start a prepared lab:\n%s", text)
			}
			cmds := printedCommands(t, text)
			if _, ok := cmds["inspect"]; ok {
				t.Errorf("the unprepared lab prints inspect, which its quota ends:\n%s", text)
			}
			if _, ok := cmds["fix"]; ok {
				t.Errorf("the unprepared lab prints fix, which its quota ends:\n%s", text)
			}
			// doctor, as printed, shows what the README asks to fix.
			code, out, errOut := runCLI(t, pw, append([]string{"doctor"}, cmds["doctor"]...)...)
			if code != exitError || !regexp.MustCompile(`FAIL\s+quota-memory\s+MaxMemoryPerShellMB is 150`).MatchString(out) {
				t.Errorf("doctor on the unprepared lab: exit %d\n%s%s", code, out, errOut)
			}

			words, err := splitShellWords(m[1])
			if err != nil {
				t.Fatal(err)
			}
			text = startLabCLI(t, pw, words)
			if strings.Contains(text, "will not load") {
				t.Errorf("the prepared lab %q still says the shell will not load:\n%s", m[1], text)
			}
			cmds = printedCommands(t, text)
			for name, want := range map[string]int{"audit": exitOpen, "doctor": exitOK, "inspect": exitOpen} {
				if _, ok := cmds[name]; !ok {
					t.Fatalf("the prepared lab prints no %s command:\n%s", name, text)
				}
				code, out, errOut := runCLI(t, pw, append([]string{name}, cmds[name]...)...)
				if code != want {
					t.Errorf("the printed %s %q: exit %d, want %d\n%s%s", name, cmds[name], code, want, out, errOut)
				}
				if name == "inspect" && !strings.Contains(out, "Platform:  exchange") {
					t.Errorf("inspect:\n%s", out)
				}
			}
			if _, ok := cmds["fix"]; !ok {
				t.Errorf("the prepared lab prints no fix command:\n%s", text)
			}
		})
	}
}
