package remediate

import (
	"regexp"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/templates"
)

// TestFramedOutputIsASCII is the argument that a script's result frame is
// ASCII whatever the host's code page (package psframe, "Code page"),
// checked on the sources:
//   - every script, the prologue included, is ASCII, so every literal
//     record type and field name is;
//   - only the prologue writes to stdout ([Console]::Out): the BEGIN and
//     END lines (the nonce is hex from runNonce, the exit code an [int])
//     and RL-Rec's lines, whose values pass through RL-Enc (base64);
//   - every RL-Rec call names its record type with an ASCII literal.
//
// Anything else a script prints (pipeline output) lands outside the frame,
// where DecodeOutput ignores it, or inside, where it is not a record line
// and the frame is refused (psframe.ErrFrame): it can never change a
// decoded value.
func TestFramedOutputIsASCII(t *testing.T) {
	reRec := regexp.MustCompile(`RL-Rec\s+(\S+)`)
	reStdout := regexp.MustCompile(`(?i)\[Console\]::Out\b|Write-Output|Write-Host|Out-Host`)
	reType := regexp.MustCompile(`^'[a-z][a-z0-9_-]*'$`)
	names := append(templates.ScriptNames(), templates.PrologueName)
	for _, n := range names {
		src, err := templates.Script(n)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range []byte(src) {
			if c > 0x7E || (c < 0x20 && c != '\n' && c != '\r' && c != '\t') {
				t.Errorf("%s: non-ASCII byte 0x%02X at %d", n, c, i)
				break
			}
		}
		// Code only: comments and the Exchange loader's silencing of
		// Write-Host (it defines a no-op) do not print.
		var code strings.Builder
		for _, l := range strings.Split(src, "\n") {
			if tl := strings.TrimSpace(l); !strings.HasPrefix(tl, "#") && !strings.HasPrefix(tl, "function global:Write-Host ") {
				code.WriteString(l + "\n")
			}
		}
		if m := reStdout.FindString(code.String()); n != templates.PrologueName && m != "" {
			t.Errorf("%s writes to stdout itself; only the prologue's RL-Rec / RL-End may", n)
		}
		for _, m := range reRec.FindAllStringSubmatch(src, -1) {
			arg := m[1]
			if n == templates.PrologueName && (arg == "'error'" || arg == "[string]$Type,") {
				continue // RL-ErrRec's call; RL-Rec's own definition
			}
			if !reType.MatchString(arg) {
				t.Errorf("%s: RL-Rec with record type %s, want an ASCII literal", n, arg)
			}
		}
	}
	pro, err := templates.Script(templates.PrologueName)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"return [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$v))",
		"$line += ' ' + $Fields[$i] + '=' + (RL-Enc $Fields[$i + 1])",
		"[Console]::Out.WriteLine('END ' + $P['_nonce'] + ' ' + $Code)",
		"function RL-End([int]$Code)",
	} {
		if !strings.Contains(pro, want) {
			t.Errorf("prologue no longer has %q: re-check the argument above", want)
		}
	}
}
