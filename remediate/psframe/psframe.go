// Package psframe is the contract between relaylock's PowerShell scripts,
// the Go code that runs them over WinRM, and the lab that simulates Windows
// hosts. It is the one place that says how a script travels and how its
// result comes back:
//
// The command line is always CommandLine(): powershell.exe with a short,
// fixed -EncodedCommand bootstrap, far below cmd.exe's 8191-character limit.
// The script and its parameters travel on stdin as a Payload: ASCII lines
//
//	RLP1
//	P <name> <base64 of the UTF-8 value>     (one per parameter)
//	S <base64 of the UTF-8 script text>      (the prologue followed by the script,
//	                                          in chunks of at most ScriptChunk characters)
//
// The bootstrap decodes the parameters into the hashtable $P, decodes the
// script and runs it as a script block, so operator input reaches
// PowerShell only as data, never as source.
//
// # How the bootstrap reads stdin, and why
//
// The bootstrap reads its stdin as the pipeline input of the command,
// `$input | Out-String`, the pattern Ansible's WinRM connection uses for its
// exec wrapper (lib/ansible/plugins/shell/powershell.py, bootstrap_wrapper.ps1),
// and the WinRS command runs with WINRS_CONSOLEMODE_STDIN=FALSE (stdin a
// pipe, MS-WSMV 3.1.4.11), as Ansible sets it whenever it feeds stdin. The
// former bootstrap read [Console]::In.ReadToEnd() with a console-mode stdin.
// That is unsafe under PowerShell 2.0 (Windows 2003/2008/2008 R2, where
// Exchange 2003-2010 live): powershell.exe 2.0 reads a redirected stdin
// itself, as the command's input, before the command runs, and can hang on
// it (Microsoft Connect 572313, "powershell.exe can hang if stdin is
// redirected"; StackStorm st2 #1695 on PowerShell 2 / Windows 2008, psake
// #72, whose workaround -InputFormat None throws the input away). A script
// reading [Console]::In then finds stdin consumed, or never starts.
// $input is what powershell.exe fills from stdin in every version (2.0 reads
// it eagerly, 3.0 and later when the command asks for $input), so it is the
// one reader that does not depend on that behaviour. The client closes stdin
// (End="true") right after the payload, so the read-to-EOF of 2.0 ends.
//
// # Code page
//
// Shells are created with WINRS_CODEPAGE=437 (ShellCodePage), not 65001:
// Windows before 6.1 (2003, 2008) does not run commands in a UTF-8 console
// and returns no output at all (WinRb/WinRM #232, "broken on any windows
// version prior to 2008R2"; chef/knife-windows #400 uses 437 there). The
// payload and the framed result are ASCII by construction (base64, decimal,
// hex nonce, ASCII record and field names), so they read the same in every
// ASCII-compatible code page; only free text on stderr (CLIXML error
// messages) is in code page 437 and is decoded as such
// (remediate.DecodeConsole). Text a script reports travels base64 UTF-8
// inside the frame, so nothing it says depends on the code page.
//
// Every script prints one framed result on stdout, ASCII only:
//
//	BEGIN <nonce>
//	R <type> <field>=<base64 UTF-8 value or ~ for $null> ...
//	END <nonce> <exit code>
//
// and exits with that code. The nonce (parameter "_nonce") is fresh for
// every run, so a truncated or replayed output is detected. The lab encodes
// its simulated results with EncodeOutput, the runner decodes them with
// DecodeOutput: both sides share this file.
package psframe

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
)

// PayloadMagic is the first line of every stdin payload.
const PayloadMagic = "RLP1"

// NonceParam is the parameter that carries the run's nonce.
const NonceParam = "_nonce"

// Bootstrap is the PowerShell 2.0 source passed with -EncodedCommand. It
// reads the payload from stdin as the command's pipeline input ($input,
// see the package comment), fills $P and runs the script. Keep it short:
// it is UTF-16LE and base64 encoded on a cmd.exe command line.
const Bootstrap = `$P=@{};$s='';` +
	`foreach($l in ($input|Out-String).Split([char]10)){$f=$l.Trim().Split([char]32);` +
	`if($f[0] -eq 'P'){$P[$f[1]]=[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($f[2]))}` +
	`elseif($f[0] -eq 'S'){$s+=$f[1]}};` +
	`&([ScriptBlock]::Create([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($s))))`

// ShellCodePage is the WINRS_CODEPAGE every shell is created with (see the
// package comment): the OEM code page of US English Windows, which every
// Windows version runs.
const ShellCodePage = "437"

// ConsoleModeStdin is the WINRS_CONSOLEMODE_STDIN of every command: FALSE,
// stdin is a pipe, so powershell.exe treats it as redirected input and
// hands it to the command as $input.
const ConsoleModeStdin = "FALSE"

// ScriptChunk is the longest "S" line of a payload: the script's base64 is
// split so that no line depends on how a host formats long strings.
const ScriptChunk = 4000

// PowerShellArgs are the fixed arguments before -EncodedCommand.
const PowerShellArgs = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand"

// CommandLine is the command every script runs with.
func CommandLine() string {
	return PowerShellArgs + " " + EncodeCommand(Bootstrap)
}

// EncodeCommand encodes PowerShell source the way -EncodedCommand expects:
// base64 of UTF-16LE.
func EncodeCommand(src string) string {
	u := utf16.Encode([]rune(src))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i] = byte(c)
		b[2*i+1] = byte(c >> 8)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeCommand reverses EncodeCommand.
func DecodeCommand(enc string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", fmt.Errorf("decode encoded command: %w", err)
	}
	if len(b)%2 != 0 {
		return "", errors.New("decode encoded command: odd number of UTF-16 bytes")
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u)), nil
}

// EncodePayload builds the stdin payload. Parameters are written in name
// order so the payload is deterministic for a given nonce.
func EncodePayload(script string, params map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString(PayloadMagic + "\r\n")
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "P %s %s\r\n", k, base64.StdEncoding.EncodeToString([]byte(params[k])))
	}
	enc := base64.StdEncoding.EncodeToString([]byte(script))
	if enc == "" {
		b.WriteString("S \r\n")
	}
	for len(enc) > 0 {
		n := min(len(enc), ScriptChunk)
		fmt.Fprintf(&b, "S %s\r\n", enc[:n])
		enc = enc[n:]
	}
	return b.Bytes()
}

// ErrPayload reports a stdin payload that does not follow the format.
var ErrPayload = errors.New("malformed script payload")

// DecodePayload reverses EncodePayload (used by the lab).
func DecodePayload(p []byte) (script string, params map[string]string, err error) {
	params = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(p))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	first := true
	var src strings.Builder
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if first {
			if line != PayloadMagic {
				return "", nil, fmt.Errorf("%w: first line %q", ErrPayload, truncate(line, 40))
			}
			first = false
			continue
		}
		if line == "" {
			continue
		}
		f := strings.Split(line, " ")
		switch {
		case f[0] == "P" && (len(f) == 3 || len(f) == 2):
			v := ""
			if len(f) == 3 {
				b, err := base64.StdEncoding.DecodeString(f[2])
				if err != nil {
					return "", nil, fmt.Errorf("%w: parameter %q: %v", ErrPayload, f[1], err)
				}
				v = string(b)
			}
			params[f[1]] = v
		case f[0] == "S" && len(f) <= 2:
			// "S " (an empty chunk, trimmed to "S") is what EncodePayload
			// writes for an empty script.
			if len(f) == 2 {
				src.WriteString(f[1])
			}
		default:
			return "", nil, fmt.Errorf("%w: line %q", ErrPayload, truncate(line, 40))
		}
	}
	if err := sc.Err(); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	if first {
		return "", nil, fmt.Errorf("%w: empty", ErrPayload)
	}
	b, err := base64.StdEncoding.DecodeString(src.String())
	if err != nil {
		return "", nil, fmt.Errorf("%w: script: %v", ErrPayload, err)
	}
	return string(b), params, nil
}

// Field is one named value of a record. Null distinguishes PowerShell
// $null from the empty string.
type Field struct {
	Name  string
	Value string
	Null  bool
}

// Record is one "R" line of a script's output.
type Record struct {
	Type   string
	Fields []Field
}

// NewRecord starts a record of the given type.
func NewRecord(typ string) *Record { return &Record{Type: typ} }

// Set appends a field and returns the record, for chaining.
func (r *Record) Set(name, value string) *Record {
	r.Fields = append(r.Fields, Field{Name: name, Value: value})
	return r
}

// SetNull appends a $null field.
func (r *Record) SetNull(name string) *Record {
	r.Fields = append(r.Fields, Field{Name: name, Null: true})
	return r
}

// SetList appends a list value, encoded as its items joined by newlines
// (the convention every script follows for lists).
func (r *Record) SetList(name string, items []string) *Record {
	return r.Set(name, strings.Join(items, "\n"))
}

// Get returns a field's value; ok is false when it is missing or $null.
func (r Record) Get(name string) (v string, ok bool) {
	for _, f := range r.Fields {
		if f.Name == name {
			return f.Value, !f.Null
		}
	}
	return "", false
}

// Str returns a field's value, or "" when it is missing or $null.
func (r Record) Str(name string) string { v, _ := r.Get(name); return v }

// Has reports whether the field is present (null or not).
func (r Record) Has(name string) bool {
	for _, f := range r.Fields {
		if f.Name == name {
			return true
		}
	}
	return false
}

// IsNull reports whether the field is present and $null.
func (r Record) IsNull(name string) bool {
	for _, f := range r.Fields {
		if f.Name == name {
			return f.Null
		}
	}
	return false
}

// List splits a newline-joined list field; empty or missing gives nil.
func (r Record) List(name string) []string {
	v := strings.ReplaceAll(r.Str(name), "\r\n", "\n")
	if v == "" {
		return nil
	}
	return strings.Split(v, "\n")
}

// Int parses an integer field.
func (r Record) Int(name string) (int64, error) {
	v, ok := r.Get(name)
	if !ok {
		return 0, fmt.Errorf("record %s: field %s missing or null", r.Type, name)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("record %s: field %s: %w", r.Type, name, err)
	}
	return n, nil
}

// Bool parses a PowerShell boolean field ("True"/"False", also 1/0/-1).
func (r Record) Bool(name string) (bool, error) {
	v, ok := r.Get(name)
	if !ok {
		return false, fmt.Errorf("record %s: field %s missing or null", r.Type, name)
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "-1":
		return true, nil
	case "false", "0", "":
		return false, nil
	}
	return false, fmt.Errorf("record %s: field %s: not a boolean: %q", r.Type, name, truncate(v, 20))
}

// Output is a decoded script result.
type Output struct {
	Nonce    string
	Records  []Record
	ExitCode int
}

// Of returns the records of one type, in order.
func (o *Output) Of(typ string) []Record {
	var rs []Record
	for _, r := range o.Records {
		if r.Type == typ {
			rs = append(rs, r)
		}
	}
	return rs
}

// First returns the first record of a type.
func (o *Output) First(typ string) (Record, bool) {
	for _, r := range o.Records {
		if r.Type == typ {
			return r, true
		}
	}
	return Record{}, false
}

// Error types a script reports with a record of type "error" before
// ending with a non-zero code.
const ErrorRecord = "error"

// EncodeOutput produces a framed result exactly as the scripts print it.
func EncodeOutput(nonce string, records []Record, code int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "BEGIN %s\r\n", nonce)
	for _, r := range records {
		b.WriteString("R " + r.Type)
		for _, f := range r.Fields {
			b.WriteString(" " + f.Name + "=")
			if f.Null {
				b.WriteString("~")
			} else {
				b.WriteString(base64.StdEncoding.EncodeToString([]byte(f.Value)))
			}
		}
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "END %s %d\r\n", nonce, code)
	return b.Bytes()
}

// ErrFrame reports output without a complete, matching frame: the script
// did not run to its end, or something else wrote to stdout.
var ErrFrame = errors.New("script output has no complete result frame")

// DecodeOutput finds the frame for nonce in stdout and decodes it. Lines
// outside the frame are ignored (PowerShell or the host may print
// banners); lines inside it must be well formed.
func DecodeOutput(nonce string, stdout []byte) (*Output, error) {
	out := &Output{Nonce: nonce}
	in := false
	ended := false
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if !in {
			if line == "BEGIN "+nonce {
				in = true
			}
			continue
		}
		if strings.HasPrefix(line, "END ") {
			f := strings.Fields(line)
			if len(f) != 3 || f[1] != nonce {
				return nil, fmt.Errorf("%w: bad end line %q", ErrFrame, truncate(line, 60))
			}
			code, err := strconv.Atoi(f[2])
			if err != nil {
				return nil, fmt.Errorf("%w: bad exit code %q", ErrFrame, truncate(f[2], 20))
			}
			out.ExitCode = code
			ended = true
			break
		}
		rec, err := parseRecord(line)
		if err != nil {
			return nil, err
		}
		out.Records = append(out.Records, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFrame, err)
	}
	if !in {
		return nil, fmt.Errorf("%w: no BEGIN line for this run", ErrFrame)
	}
	if !ended {
		return nil, fmt.Errorf("%w: no END line (output cut short after %d records)", ErrFrame, len(out.Records))
	}
	return out, nil
}

func parseRecord(line string) (Record, error) {
	f := strings.Split(line, " ")
	if len(f) < 2 || f[0] != "R" || f[1] == "" {
		return Record{}, fmt.Errorf("%w: unexpected line %q", ErrFrame, truncate(line, 60))
	}
	rec := Record{Type: f[1]}
	for _, kv := range f[2:] {
		if kv == "" {
			continue
		}
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return Record{}, fmt.Errorf("%w: record %s: bad field %q", ErrFrame, rec.Type, truncate(kv, 40))
		}
		if val == "~" {
			rec.Fields = append(rec.Fields, Field{Name: name, Null: true})
			continue
		}
		b, err := base64.StdEncoding.DecodeString(val)
		if err != nil {
			return Record{}, fmt.Errorf("%w: record %s: field %s: %v", ErrFrame, rec.Type, name, err)
		}
		rec.Fields = append(rec.Fields, Field{Name: name, Value: string(b)})
	}
	return rec, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
