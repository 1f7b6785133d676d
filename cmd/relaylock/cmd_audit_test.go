package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/audit/smtptest"
)

// resolveExampleMX makes the CLI resolve example.com to one MX,
// mx.example.com at 127.0.0.1, for the rest of the test.
func resolveExampleMX(t *testing.T) {
	t.Helper()
	testResolver = &audit.MockResolver{
		MX:    map[string][]string{"example.com": {"mx.example.com"}},
		Addrs: map[string][]netip.Addr{"mx.example.com": {netip.MustParseAddr("127.0.0.1")}},
	}
	t.Cleanup(func() { testResolver = nil })
}

func TestAuditCommandExitCodes(t *testing.T) {
	open := smtptest.Serve(t, smtptest.Open())
	closed := smtptest.Serve(t, smtptest.Closed554())
	resolveExampleMX(t)
	port := func(a string) string { return a[strings.LastIndex(a, ":")+1:] }
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"open relay exits 3", []string{"--ports", port(open), "--helo", "probe.example.net", "example.com"}, exitOpen, "OPEN"},
		{"closed exits 0", []string{"--ports", port(closed), "--helo", "probe.example.net", "example.com"}, exitOK, "CLOSED"},
		{"address target with port", []string{"--mail-domain", "example.com", "--helo", "probe.example.net", closed}, exitOK, "CLOSED"},
		{"json", []string{"--format", "json", "--ports", port(closed), "--helo", "probe.example.net", "example.com"}, exitOK, `"verdict": "closed"`},
		{"no target is usage", []string{}, exitUsage, ""},
		{"bad target is usage", []string{"user@example.com"}, exitUsage, ""},
		{"bad depth is usage", []string{"--depth", "deep", "example.com"}, exitUsage, ""},
		{"deliver without --to is usage", []string{"--deliver", "example.com"}, exitUsage, ""},
		{"bad ports is usage", []string{"--ports", "25,x", "example.com"}, exitUsage, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			e := &env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
			code := run(context.Background(), append([]string{"relaylock", "audit"}, tc.args...), e)
			if code != tc.code || !strings.Contains(stdout.String(), tc.out) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			if tc.name == "json" {
				var r audit.Result
				if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
					t.Fatalf("stdout is not a Result: %v", err)
				}
			}
		})
	}
}
