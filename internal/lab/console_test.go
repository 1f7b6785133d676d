package lab

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// legacyBootstrap is the bootstrap relaylock used before it moved to
// $input: it reads [Console]::In.ReadToEnd(). The lab must refuse it where
// PowerShell 2.0 would.
const legacyBootstrap = `$P=@{};$s='';` +
	`foreach($l in [Console]::In.ReadToEnd().Split([char]10)){$f=$l.Trim().Split([char]32);` +
	`if($f[0] -eq 'P'){$P[$f[1]]=[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($f[2]))}` +
	`elseif($f[0] -eq 'S'){$s+=$f[1]}};` +
	`&([ScriptBlock]::Create([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($s))))`

func legacyCommandLine() string {
	return psframe.PowerShellArgs + " " + psframe.EncodeCommand(legacyBootstrap)
}

func TestConsoleModel(t *testing.T) {
	in, nonce := payload(t, "detect", nil)
	ps2old, err := NewHost("exchange2003") // Windows 2003 (5.2), PowerShell 2.0
	if err != nil {
		t.Fatal(err)
	}
	ps2, _ := NewHost("exchange2010") // Windows 2008 R2 (6.1), PowerShell 2.0
	ps5, _ := NewHost("iis")          // Windows 2019, PowerShell 5.1
	const (
		ok = iota
		empty
		hang
	)
	tests := []struct {
		name     string
		h        Host
		codepage string
		console  bool
		line     string
		want     int
	}{
		{"relaylock on 2003", ps2old, "437", false, psframe.CommandLine(), ok},
		{"relaylock on 2008 R2", ps2, "437", false, psframe.CommandLine(), ok},
		{"relaylock on 2019", ps5, "437", false, psframe.CommandLine(), ok},
		{"65001 before 6.1 runs nothing", ps2old, "65001", false, psframe.CommandLine(), empty},
		{"65001 on 6.1 is fine", ps2, "65001", false, psframe.CommandLine(), ok},
		{"$input with console stdin on PS 2.0 is empty", ps2, "437", true, psframe.CommandLine(), empty},
		{"[Console]::In with console stdin on PS 2.0 hangs", ps2, "437", true, legacyCommandLine(), hang},
		{"[Console]::In with a pipe on PS 2.0 finds stdin consumed", ps2, "437", false, legacyCommandLine(), empty},
		{"[Console]::In on PS 5.1 works", ps5, "65001", true, legacyCommandLine(), ok},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code, hung := runProcess(tc.h, Process{CodePage: tc.codepage, ConsoleStdin: tc.console}, tc.line, in)
			switch tc.want {
			case hang:
				if !hung {
					t.Fatalf("did not hang: code %d, stdout %q", code, stdout)
				}
			case empty:
				if hung || len(stdout) != 0 || len(stderr) != 0 || code != 0 {
					t.Fatalf("want no output and exit 0, got hang=%v code %d stdout %q stderr %q", hung, code, stdout, stderr)
				}
			case ok:
				if hung {
					t.Fatal("hung")
				}
				out, err := psframe.DecodeOutput(nonce, stdout)
				if err != nil || out.ExitCode != 0 {
					t.Fatalf("frame: %v (stdout %q)", err, stdout)
				}
			}
		})
	}
}

// The code page the shell asked for decides how non-ASCII stderr text
// arrives: code page 437 carries German umlauts, not Cyrillic.
func TestConsoleCodePage(t *testing.T) {
	got := oemBytes([]byte("Zugriff verweigert: Größe ü, Доступ"))
	want := []byte("Zugriff verweigert: Gr\x94\xe1e \x81, ??????")
	if !bytes.Equal(got, want) {
		t.Errorf("oemBytes = %q, want %q", got, want)
	}
	if s := remediate.DecodeConsole(got); s != "Zugriff verweigert: Größe ü, ??????" {
		t.Errorf("DecodeConsole = %q", s)
	}
}

// End to end with the real masterzen client and its hard-coded options
// (WINRS_CONSOLEMODE_STDIN=TRUE, WINRS_CODEPAGE=65001): the former
// bootstrap never ends on a PowerShell 2.0 host, and the lab records the
// stopped process as hung.
func TestLegacyBootstrapHangsOnPowerShell2(t *testing.T) {
	h, err := NewHost("exchange2010")
	if err != nil {
		t.Fatal(err)
	}
	w := NewWSMan(h, WSManConfig{User: testUser, Password: testPass, AllowUnencrypted: true, MaxOperationTimeout: time.Second})
	if err := w.Listen("127.0.0.1:0", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	ts := &testServer{WSMan: w, host: "127.0.0.1", port: w.Addr().(*net.TCPAddr).Port}
	c := ts.client(t, clientOpts{timeout: "PT1S"})
	in, _ := payload(t, "detect", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	_, err = c.RunWithContextWithInput(ctx, legacyCommandLine(), &out, &errb, bytes.NewReader(in))
	if ctx.Err() == nil {
		t.Fatalf("the run ended (err %v, stdout %q): want it to hang until the deadline", err, out.String())
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal(ctx.Err())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var hung bool
		for _, r := range w.Runs() {
			hung = hung || (r.Hung && strings.HasPrefix(r.CommandLine, psframe.PowerShellArgs))
		}
		if hung {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no hung run recorded: %+v", w.Runs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
