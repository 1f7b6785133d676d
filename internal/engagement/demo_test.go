package engagement

import (
	"os"
	"path/filepath"
	"testing"
)

// The demo names relaylock the way it was started: the README runs it
// with `go run ./cmd/relaylock`, which puts no relaylock on PATH.
func TestDemoProgram(t *testing.T) {
	root, src := t.TempDir(), t.TempDir() // src: a source tree
	if err := os.MkdirAll(filepath.Join(src, "cmd", "relaylock"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "cmd", "relaylock", "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, exe, dir string
		want           string
	}{
		{"installed", "/usr/local/bin/relaylock", root, "relaylock"},
		{"built by hand", "/home/u/src/relaylock/relaylock", root, "relaylock"},
		{"go run from the module root", "/tmp/go-build2804267502/b001/exe/relaylock", src, "go run ./cmd/relaylock"},
		{"go run elsewhere", "/tmp/go-build2804267502/b001/exe/relaylock", root, "go run " + demoMainPackage},
		{"go run, GOCACHE", "/root/.cache/go-build/3f/3f0c-d/relaylock", root, "go run " + demoMainPackage},
		{"a folder merely named exe", "/opt/exe/relaylock", root, "relaylock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := demoProgram(filepath.FromSlash(tc.exe), tc.dir); got != tc.want {
				t.Errorf("demoProgram(%q, %q) = %q, want %q", tc.exe, tc.dir, got, tc.want)
			}
		})
	}
}

// The demo's "try it yourself" lab is prepared as the demo's own was.
func TestLabCommandLine(t *testing.T) {
	for _, tc := range []struct {
		o    LabOptions
		want string
	}{
		{LabOptions{Platform: "iis", Listen: "127.0.0.1", Language: "en-US"}, "relaylock lab --platform iis"},
		{LabOptions{Platform: "Exchange2010", MaxMemoryPerShellMB: 1024}, "relaylock lab --platform exchange2010 --max-memory-per-shell-mb 1024"},
		{LabOptions{Platform: "exchange2007", Listen: "127.0.0.2", SMTPPort: 2525, Domain: "contoso.test", SealedHTTP: true, Language: "de-DE", MaxMemoryPerShellMB: 1024},
			"relaylock lab --platform exchange2007 --listen 127.0.0.2 --smtp-port 2525 --domain contoso.test --sealed-http --language de-DE --max-memory-per-shell-mb 1024"},
		{LabOptions{Platform: "iis", Domain: "it's odd"}, `relaylock lab --platform iis --domain 'it'\''s odd'`},
	} {
		if got := LabCommandLine("relaylock", tc.o); got != tc.want {
			t.Errorf("LabCommandLine(%+v) =\n  %s\nwant\n  %s", tc.o, got, tc.want)
		}
	}
}
