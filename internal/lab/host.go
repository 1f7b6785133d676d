// Package lab simulates Windows mail hosts for tests, the demo and
// training: a WS-Management server that the real masterzen/winrm client
// (and pywinrm) talks to, platform simulations whose state relaylock's
// scripts read and change, an SMTP face whose relay decisions follow that
// state, and a DNS server. It cannot run PowerShell: it identifies each
// script by its exact text (templates.FullScript) and dispatches to the
// platform's handler for that script name, with the parameters decoded
// from the payload (remediate/psframe). That dispatch is the contract
// between scripts and lab, kept in one place: see Dispatch.
//
// # Using the lab
//
// Start runs one simulated host with all its faces on loopback:
//
//	l, err := lab.Start(ctx, lab.Config{Platform: "exchange2016"})
//	defer l.Close()
//	// DNS:   l.DNSAddr   (MX l.Domain → l.MXHost → 127.0.0.1)
//	// SMTP:  l.SMTPAddr  (relay decisions from l.Host at every RCPT)
//	// WinRM: l.WinRMHost, l.WinRMPort over HTTPS; trust l.CACertPEM,
//	//        verify against l.TLSServerName; l.User / l.Password
//	//        (Basic and NTLM; also SMTP AUTH PLAIN/LOGIN).
//
// NewHost builds a platform by name with one explicit switch (platforms.go),
// and Platforms lists the names; tests may pass their own Host in Config.Host.
//
// The SMTP face sees the real client address. To test allow lists, probe
// from another loopback address: on Linux every 127.0.0.0/8 address is
// local, so a net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
// reaches l.SMTPAddr as client 127.0.0.2 (see lab_test.go).
//
// # The WS-Management face
//
// WSMan (wsman.go) is a strict WinRS server (MS-WSMV; docs/winrm.md §2): real
// long-poll Receive ending in the w:TimedOut fault, Windows' faults for an
// unknown shell or command, cmd.exe's 8191-character limit, MaxShellsPerUser,
// MaxEnvelopeSizekb (HTTP 413), 415 for a wrong content type, and the
// 401 Windows sends for bad credentials. Authentication is Basic or NTLMv2
// (ntlm.go, per connection). Over plain HTTP it speaks NTLM message
// encryption (ntlmseal.go, MS-WSMV 2.2.9.1) and, like a default Windows
// listener, refuses unsealed messages unless AllowUnencrypted is set
// (Config.SealedHTTP is that default; Config.PlainHTTP is a clear-text
// host that cannot seal; HTTPS is the lab's default).
//
// For assertions it records every request (WSMan.Calls) and every command
// run with its decoded script name and parameters (WSMan.Runs);
// WSMan.Verify fails on an expected script that never ran. Faults
// (faults.go) injects dropped connections, HTTP 500 faults, access denied,
// hung requests and delays, by action, by Nth request or by script name,
// before or after the script ran.
package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
	"github.com/relaylock/relaylock/templates"
)

// Host is one simulated Windows mail host. Implementations guard their
// state with their own lock: the WS-Man and SMTP faces call concurrently.
type Host interface {
	// HostInfo is what the detect script reports.
	HostInfo() remediate.HostInfo
	// Handle runs script name with params against the state and returns
	// the records the real script would print, its exit code, and any
	// stderr text (CLIXML on a real host). An unknown script must return
	// an error record and a non-zero code, as a failing real script would.
	Handle(script string, params map[string]string) (recs []psframe.Record, code int, stderr string)
	// RelayAllowed says whether the SMTP service, in its current state,
	// relays mail from client to a recipient in rcptDomain (a domain the
	// host is not authoritative for). authenticated is true after a
	// successful SMTP AUTH.
	RelayAllowed(client netip.Addr, authenticated bool, rcptDomain string) bool
	// LocalDomains are the domains the host accepts mail for.
	LocalDomains() []string
}

// GuestLogoner is a Host on which a failed SMTP AUTH can still log on:
// with Basic authentication and the local Guest account enabled, IIS
// SMTP and Exchange 5.5-2003 log a failed login on as Guest, which then
// counts as authenticated for RelayForAuth (docs/windows-relay.md §1.3
// [S53]). The SMTP face asks at every failed login.
type GuestLogoner interface {
	GuestLogon() bool
}

var (
	scriptOnce   sync.Once
	scriptByHash map[string]string
)

// ScriptName identifies a script by its full text (prologue + script):
// the only scripts the lab runs are relaylock's own, byte for byte.
func ScriptName(fullText string) (string, bool) {
	scriptOnce.Do(func() {
		scriptByHash = map[string]string{}
		for _, n := range templates.ScriptNames() {
			t, err := templates.FullScript(n)
			if err != nil {
				panic(err)
			}
			scriptByHash[hashText(t)] = n
		}
	})
	n, ok := scriptByHash[hashText(fullText)]
	return n, ok
}

func hashText(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Dispatch runs a command line and stdin payload against h, exactly as the
// WS-Man face receives them, and returns stdout, stderr and the exit code.
// It enforces the contract: the command line must be psframe.CommandLine(),
// the payload well formed, the script one of relaylock's own.
//
// What it answers:
//   - a command line over cmd.exe's 8191 characters: "The command line is
//     too long." on stderr, exit 1, as Windows does (docs/winrm.md §0.5);
//   - psframe.CommandLine() with a payload: the script, identified by its
//     exact text (ScriptName). The "detect" script is answered here for
//     every platform, from h.HostInfo() through remediate.EncodeHostInfo,
//     the Go mirror of detect.ps1; every other script goes to h.Handle;
//   - a few cmd.exe built-ins so that generic WinRM clients (pywinrm's
//     run_cmd, winrm-cli) have something to run: "echo TEXT", "hostname",
//     "ver", "exit /b N" (see cmdBuiltin);
//   - anything else: cmd.exe's "is not recognized" error, exit 1.
//
// The host's conditions are the zero HostConditions: WinRM's defaults
// (DispatchWith takes others).
func Dispatch(h Host, commandLine string, stdin []byte) (stdout, stderr []byte, code int) {
	return DispatchWith(h, HostConditions{}, commandLine, stdin)
}

// DispatchWith is Dispatch on a host with conditions c (for example a
// MaxMemoryPerShellMB its administrator raised: HostConditions.Apply).
func DispatchWith(h Host, c HostConditions, commandLine string, stdin []byte) (stdout, stderr []byte, code int) {
	stdout, stderr, code, _ = runProcess(h, Process{CodePage: psframe.ShellCodePage, ConsoleStdin: psframe.ConsoleModeStdin == "TRUE",
		EnvelopeKB: DefaultMaxEnvelopeSize / 1024, Conditions: c}, commandLine, stdin)
	return stdout, stderr, code
}

// dispatch is Dispatch after the console model (console.go), with error
// messages in language lang (messages.go).
func dispatch(h Host, p Process, commandLine string, stdin []byte) (stdout, stderr []byte, code int) {
	lang := p.Language
	if commandLineTooLong(commandLine) {
		return nil, []byte("The command line is too long.\r\n"), 1
	}
	if bootstrapReader(commandLine) == readerNone {
		return cmdBuiltin(h, commandLine)
	}
	src, params, err := psframe.DecodePayload(stdin)
	if err != nil {
		return nil, []byte("lab: " + err.Error() + "\r\n"), 1
	}
	nonce := params[psframe.NonceParam]
	name, ok := ScriptName(src)
	if !ok {
		rec := psframe.NewRecord(psframe.ErrorRecord).Set("message", "lab: script is not one of relaylock's embedded scripts (sha256 "+hashText(src)+")")
		return psframe.EncodeOutput(nonce, []psframe.Record{*rec}, 1), nil, 1
	}
	if out, ok := p.Replay[name]; ok {
		return replay(out, nonce)
	}
	if overQuota(hostInfo(h, p.Conditions), p.Conditions, name) {
		// WinRM ends the process when an allocation exceeds
		// MaxMemoryPerShellMB (memquota.go): no result frame.
		return nil, []byte(outOfMemoryText), 1
	}
	if name == remediate.DetectScript {
		return psframe.EncodeOutput(nonce, remediate.EncodeHostInfo(hostInfo(h, p.Conditions)), 0), nil, 0
	}
	if name == DoctorScript {
		return psframe.EncodeOutput(nonce, doctorAnswer(h, p, params), 0), nil, 0
	}
	if name == "service-restart" {
		recs, code := restartService(h, params)
		return psframe.EncodeOutput(nonce, localize(recs, lang), code), nil, code
	}
	recs, code, errText := h.Handle(name, params)
	return psframe.EncodeOutput(nonce, localize(recs, lang), code), []byte(errText), code
}

// readsStdin reports whether a command line reads its stdin to the end
// before doing anything, so that the WS-Man face must wait for End="true"
// before running it: relaylock's bootstrap does ($input), and so does the
// former one ([Console]::In.ReadToEnd(), see console.go).
// Every other command line runs at once, like a process that never reads
// its input (pywinrm's run_cmd never closes stdin).
func readsStdin(commandLine string) bool {
	return bootstrapReader(commandLine) != readerNone
}

// cmdBuiltin answers the few cmd.exe commands the lab knows, with cmd's
// own output format (CRLF line ends).
func cmdBuiltin(h Host, line string) (stdout, stderr []byte, code int) {
	line = strings.TrimSpace(line)
	verb, rest, _ := strings.Cut(line, " ")
	switch strings.ToLower(verb) {
	case "echo":
		if rest == "" {
			return []byte("ECHO is on.\r\n"), nil, 0
		}
		return []byte(rest + "\r\n"), nil, 0
	case "hostname":
		if rest == "" {
			return []byte(h.HostInfo().ComputerName + "\r\n"), nil, 0
		}
	case "ver":
		if rest == "" {
			return []byte("\r\nMicrosoft Windows [Version " + h.HostInfo().OSVersion + "]\r\n"), nil, 0
		}
	case "exit":
		f := strings.Fields(rest)
		if len(f) == 2 && strings.EqualFold(f[0], "/b") {
			if n, err := strconv.Atoi(f[1]); err == nil {
				return nil, nil, n
			}
		}
	}
	return nil, []byte(fmt.Sprintf("'%.60s' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", verb)), 1
}

// restartableServices are the services service-restart.ps1 agrees to
// restart; the lab refuses the others exactly as the script does.
var restartableServices = []string{"SMTPSVC", "MSExchangeTransport", "MSExchangeFrontEndTransport"}

// restartService answers service-restart.ps1 for every platform. The lab
// applies relay settings at once, so a restart changes no state; like
// Restart-Service it fails for a service the host does not have.
func restartService(h Host, params map[string]string) ([]psframe.Record, int) {
	name := params["service"]
	allowed := false
	for _, s := range restartableServices {
		if strings.EqualFold(s, name) {
			allowed = true
		}
	}
	if !allowed {
		return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).Set("message", "refusing to restart service: "+name)}, 2
	}
	for _, s := range h.HostInfo().Services {
		if strings.EqualFold(s.Name, name) && s.Present {
			return []psframe.Record{*psframe.NewRecord("service").Set("name", name).Set("state", "Running")}, 0
		}
	}
	msg := "Cannot find any service with service name '" + name + "'."
	return []psframe.Record{*psframe.NewRecord(psframe.ErrorRecord).Set("message", msg).
		Set("type", "Microsoft.PowerShell.Commands.ServiceCommandException").
		Set("inner", "Microsoft.PowerShell.Commands.ServiceCommandException").Set("hresult", "0x80131509").
		Set("fqid", "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.RestartServiceCommand").Set("line", "12")}, 1
}

// replay answers with a recorded framed output (WSManConfig.Replay), its
// nonce replaced by the run's; the exit code is the one on its END line.
func replay(out []byte, nonce string) (stdout, stderr []byte, code int) {
	text := string(out)
	i := strings.Index(text, "BEGIN ")
	if i < 0 {
		return out, nil, 0
	}
	old, _, _ := strings.Cut(strings.TrimLeft(text[i+len("BEGIN "):], " "), "\r")
	old, _, _ = strings.Cut(old, "\n")
	if old == "" {
		return out, nil, 0
	}
	text = strings.ReplaceAll(text, " "+old, " "+nonce)
	if j := strings.LastIndex(text, "END "+nonce+" "); j >= 0 {
		f := strings.Fields(text[j:])
		if len(f) >= 3 {
			code, _ = strconv.Atoi(f[2])
		}
	}
	return []byte(text), nil, code
}
