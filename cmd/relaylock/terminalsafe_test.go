package main

// Nothing relaylock prints to a terminal or a CSV file carries a control
// character or invalid UTF-8 from a server or an operator (tryout finding
// 13): flag values with one are refused (exit 2), printed shell commands
// quote them so that pasting reproduces the value (internal/shellquote's
// tests), CSV cells escape them visibly.

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/audit/smtptest"
)

// hostileText has ESC sequences (clear screen, set title), BEL, CR, a bidi
// override, a C1 control and invalid UTF-8.
const hostileText = "T-1\r\x1b[2J\x1b]0;pwned\x07 \u202eevil\u202c \u0085 \xff\xfe end"

// terminalSafe fails if out holds a control character other than the line
// ends the format needs, a bidi control, or invalid UTF-8.
func terminalSafe(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s is not valid UTF-8: %q", what, out)
	}
	for _, r := range out {
		if r != '\n' && (r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || unicode.Is(unicode.Bidi_Control, r)) {
			t.Errorf("%s holds U+%04X: %q", what, r, out)
			return
		}
	}
}

func TestFlagTextRefused(t *testing.T) {
	tests := []struct{ name, flag, value string }{
		{"ticket with CR and ESC", "--ticket", "CHG-1\r\x1b[2J"},
		{"client with invalid UTF-8", "--client", "ACME \xff"},
		{"authorization with a bidi override", "--authorization", "AUTH-\u202e1"},
		{"helo with BEL", "--helo", "probe\x07.example.net"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "", "audit", tc.flag, tc.value, "127.0.0.1:1")
			if code != exitUsage || !strings.Contains(errOut, tc.flag) {
				t.Errorf("exit %d, want %d naming %s\nstdout:\n%s\nstderr:\n%s", code, exitUsage, tc.flag, out, errOut)
			}
			terminalSafe(t, "stderr", errOut)
		})
	}
	// remediate refuses before it reads anything from a host.
	code, _, errOut := runCLI(t, "pw", "remediate", "--winrm-host", "127.0.0.1", "--winrm-port", "1", "--allow", "192.0.2.10",
		"--yes", "--ticket", hostileText)
	if code != exitUsage || strings.Contains(errOut, "127.0.0.1:1") {
		t.Errorf("remediate --ticket with control characters: exit %d\n%s", code, errOut)
	}
	// Plain text in any script is fine.
	if code, _, errOut := runCLI(t, "", "audit", "--ticket", "CHG-42 Müller & Söhne", "--client", "株式会社", "127.0.0.1:1"); code == exitUsage {
		t.Errorf("a printable ticket was refused: %s", errOut)
	}
}

// TestAuditCSVHostileServer: a server whose banner holds ESC, BEL, CR and
// invalid UTF-8; the CSV (and the text output) show them as escapes.
func TestAuditCSVHostileServer(t *testing.T) {
	p := smtptest.Closed554()
	p.Banner = "mx.example ESMTP \x1b]0;pwned\x07\x1b[31m\rred \xff\xfe \u202eevil"
	srv := smtptest.Serve(t, p)
	for _, format := range []string{"csv", "text"} {
		var stdout, stderr bytes.Buffer
		e := &env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
		code := run(context.Background(), []string{"relaylock", "audit", "--format", format, "--helo", "probe.example.net",
			"--mail-domain", "example.com", srv}, e)
		if code == exitUsage || code == exitError {
			t.Fatalf("%s: exit %d\n%s\n%s", format, code, stdout.String(), stderr.String())
		}
		terminalSafe(t, format+" output", stdout.String())
		terminalSafe(t, format+" stderr", stderr.String())
		if format != "csv" {
			continue
		}
		rows, err := csv.NewReader(strings.NewReader(stdout.String())).ReadAll()
		if err != nil || len(rows) != 2 {
			t.Fatalf("CSV: %v\n%s", err, stdout.String())
		}
		banner := rows[1][len(rows[1])-1]
		for _, w := range []string{`\x1b]0;pwned\x07\x1b[31m\rred`, "\uFFFD", "<U+202E>evil"} {
			if !strings.Contains(banner, w) {
				t.Errorf("banner cell %q lacks %q", banner, w)
			}
		}
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain ü 株", "plain ü 株"},
		{"a\tb\r\n\x1b[2J\x07\x7f", `a\tb\r\n\x1b[2J\x07\x7f`},
		{"\u0085\u009b", `\u0085\u009b`},
		{"\xff\xfeok", "\uFFFD\uFFFDok"},
		{"x\u202ey\u200b", "x<U+202E>y<U+200B>"},
	}
	for _, tc := range tests {
		if got := audit.Printable(tc.in); got != tc.want {
			t.Errorf("Printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestErrorMessagesPrintable: an error that quotes a server (a WinRM
// fault, script output, a reply) reaches stderr escaped, its lines kept.
func TestErrorMessagesPrintable(t *testing.T) {
	for _, err := range []error{
		errors.New("fault from host: " + hostileText + "\nsecond line"),
		withCode(exitOpen, errors.New(hostileText)),
		usagef("bad %s", hostileText),
		fmt.Errorf("interrupted: %w: %s", context.Canceled, hostileText),
	} {
		var b bytes.Buffer
		exitCode(context.Background(), &b, err)
		terminalSafe(t, "stderr", b.String())
		if !strings.Contains(b.String(), `\x1b[2J`) {
			t.Errorf("the escape is not shown: %q", b.String())
		}
	}
}
