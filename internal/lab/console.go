package lab

// What powershell.exe does with its stdin and its console code page, as
// far as relaylock's bootstrap is concerned. The WinRS face starts every
// command through runProcess with the options of its Create
// (WINRS_CODEPAGE) and Command (WINRS_CONSOLEMODE_STDIN) requests, so a
// client that sends the wrong ones fails here the way it would on the host.
//
// Modelled (sources in package psframe's comment):
//
//   - Windows before 6.1 (2003, 2008) with WINRS_CODEPAGE=65001: the
//     command returns at once, exit code 0, without output and without
//     running (WinRb/WinRM #232).
//   - PowerShell 2.0 reads a redirected stdin (a pipe) itself, to the end,
//     as the command's input ($input), before the command runs; a script
//     that reads [Console]::In then finds it consumed (empty).
//   - PowerShell 2.0 with a console-mode stdin and a bootstrap reading
//     [Console]::In: the process hangs (Microsoft Connect 572313,
//     StackStorm st2 #1695). The command never ends; only a Signal or the
//     shell's deletion stops it.
//   - $input with a console-mode stdin is empty: a console is not
//     redirected input. This is inferred, not documented; the lab applies
//     it to PowerShell 2.0 only, and lets PowerShell 3.0 and later (which
//     read stdin only when the command asks) take the payload either way.
//   - In code page 437 (or any single-byte OEM code page) Windows writes
//     what the code page cannot carry as '?': the lab encodes stdout and
//     stderr that way unless the shell asked for 65001.

import (
	"strconv"
	"strings"

	"golang.org/x/text/encoding/charmap"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// Process is what the WinRS face tells runProcess about the process.
type Process struct {
	// CodePage is the shell's WINRS_CODEPAGE ("" when the client sent none:
	// the host's OEM code page, 437 in the lab).
	CodePage string
	// ConsoleStdin is the command's WINRS_CONSOLEMODE_STDIN (TRUE when the
	// client sent none, as winrs.exe does).
	ConsoleStdin bool
	// Language is the host's display language (WSManConfig.Language).
	Language string
	// Replay is WSManConfig.Replay.
	Replay map[string][]byte
	// Conditions and EnvelopeKB (MaxEnvelopeSizekb) describe the host
	// for doctor.ps1 (doctor.go).
	Conditions HostConditions
	EnvelopeKB int
}

// stdinReader says how a relaylock bootstrap reads its payload.
type stdinReader int

const (
	readerNone    stdinReader = iota // not a relaylock bootstrap
	readerInput                      // $input (psframe.Bootstrap)
	readerConsole                    // [Console]::In.ReadToEnd()
)

// bootstrapReader decodes a powershell.exe -EncodedCommand line with
// relaylock's fixed arguments and says how its bootstrap reads stdin.
func bootstrapReader(line string) stdinReader {
	enc, ok := strings.CutPrefix(line, psframe.PowerShellArgs+" ")
	if !ok || strings.ContainsAny(enc, " \t") {
		return readerNone
	}
	src, err := psframe.DecodeCommand(enc)
	if err != nil {
		return readerNone
	}
	switch {
	case src == psframe.Bootstrap:
		return readerInput
	case strings.Contains(src, "[Console]::In.ReadToEnd()") && strings.Contains(src, "[ScriptBlock]::Create("):
		return readerConsole
	}
	return readerNone
}

// psMajor is the major version of the host's PowerShell (2 when unknown:
// the oldest a WinRM host can have).
func psMajor(h Host) int {
	v := h.HostInfo().PSVersion
	maj, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(maj)
	if err != nil || n < 1 {
		return 2
	}
	return n
}

// osBefore61 reports Windows older than 6.1 (7 / 2008 R2).
func osBefore61(h Host) bool {
	f := strings.Split(h.HostInfo().OSVersion, ".")
	if len(f) < 2 {
		return false
	}
	maj, err1 := strconv.Atoi(f[0])
	min, err2 := strconv.Atoi(f[1])
	return err1 == nil && err2 == nil && (maj < 6 || maj == 6 && min < 1)
}

// runProcess runs a command line as the WinRS face starts it. hang is true
// when the process would never end (the caller keeps the command running
// until it is signalled).
func runProcess(h Host, p Process, line string, stdin []byte) (stdout, stderr []byte, code int, hang bool) {
	if p.CodePage == "65001" && osBefore61(h) {
		return nil, nil, 0, false
	}
	if rd := bootstrapReader(line); rd != readerNone && psMajor(h) < 3 {
		switch {
		case rd == readerConsole && p.ConsoleStdin:
			return nil, nil, 0, true
		case rd == readerConsole, rd == readerInput && p.ConsoleStdin:
			stdin = nil // consumed by the host, or never redirected: the script block is empty
		}
		if len(stdin) == 0 {
			return nil, nil, 0, false
		}
	}
	stdout, stderr, code = dispatch(h, p, line, stdin)
	if p.CodePage != "65001" {
		stdout, stderr = oemBytes(stdout), oemBytes(stderr)
	}
	return stdout, stderr, code, false
}

// oemBytes re-encodes UTF-8 text in code page 437, '?' for what it lacks.
func oemBytes(b []byte) []byte {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return b
	}
	out := make([]byte, 0, len(b))
	for _, r := range string(b) {
		if c, ok := charmap.CodePage437.EncodeRune(r); ok {
			out = append(out, c)
		} else {
			out = append(out, '?')
		}
	}
	return out
}
