package lab

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// This file is the lab's WS-Management face: the subset of MS-WSMV that
// WinRS clients use to run a command in a cmd shell (docs/winrm.md §2), spoken
// strictly enough that the real masterzen/winrm client and pywinrm behave
// against it as against Windows.
//
//	Create   (transfer/Create, resource .../windows/shell/cmd)  MS-WSMV 3.1.4.5
//	Command  (shell/Command)                                      MS-WSMV 3.1.4.11
//	Send     (shell/Send: stdin, base64, End="true")              MS-WSMV 3.1.4.13
//	Receive  (shell/Receive: long-poll up to OperationTimeout)    MS-WSMV 3.1.4.14
//	Signal   (shell/Signal: terminate, ctrl_c, ctrl_break)        MS-WSMV 3.1.4.12
//	Delete   (transfer/Delete)                                    MS-WSMV 3.1.4.6
//
// A command runs when it can: a command line that reads stdin to its end
// (relaylock's psframe bootstrap) runs once stdin is complete; any other
// runs at once, like a process that never reads its input. It runs
// through Dispatch, so the WS-Man face and DirectRunner behave the same.

// XML namespaces (MS-WSMV 2.2.1).
const (
	nsSOAP       = "http://www.w3.org/2003/05/soap-envelope"
	nsAddressing = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsWSMan      = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
	nsShell      = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	nsTransfer   = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
	nsWSManFault = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
)

// Action URIs (MS-WSMV 3.1.4).
const (
	actionCreate  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
	actionDelete  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
	actionCommand = nsShell + "/Command"
	actionSend    = nsShell + "/Send"
	actionReceive = nsShell + "/Receive"
	actionSignal  = nsShell + "/Signal"
	actionFault   = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"

	resourceCmd     = nsShell + "/cmd"
	stateDone       = nsShell + "/CommandState/Done"
	stateRunning    = nsShell + "/CommandState/Running"
	signalTerminate = nsShell + "/signal/terminate"
	signalCtrlC     = nsShell + "/signal/ctrl_c"
	signalCtrlBrk   = nsShell + "/signal/ctrl_break"
	anonymousRole   = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
)

var shortAction = map[string]string{
	actionCreate:  "Create",
	actionDelete:  "Delete",
	actionCommand: "Command",
	actionSend:    "Send",
	actionReceive: "Receive",
	actionSignal:  "Signal",
}

// Limits, as documented for Windows (docs/winrm.md §0.5, §2.7).
const (
	// MaxCommandLine is cmd.exe's command-line limit in characters.
	MaxCommandLine = 8191
	// DefaultMaxEnvelopeSize is WinRM's MaxEnvelopeSizekb default (500 KB).
	DefaultMaxEnvelopeSize = 500 * 1024
	// DefaultMaxShellsPerUser is WinRS MaxShellsPerUser's default.
	DefaultMaxShellsPerUser = 30
	maxStdin                = 16 << 20
	// exitCtrlC is STATUS_CONTROL_C_EXIT, the exit code of a console
	// process ended by Ctrl-C or a WinRS terminate signal.
	exitCtrlC = -1073741510
)

// WSManConfig configures a WS-Management server.
type WSManConfig struct {
	// User and Password are the one account the host accepts. User is
	// "name" (a local account) or "DOMAIN\name".
	User     string
	Password string
	// DisableBasic and DisableNTLM switch off an authentication scheme
	// (both are on by default, as on a host configured with
	// winrm set winrm/config/service/auth @{Basic="true"}).
	DisableBasic bool
	DisableNTLM  bool
	// AllowUnencrypted is WinRM's service setting of that name. Unset (the
	// Windows default), a plain-HTTP listener accepts only messages sealed
	// with the connection's NTLM session (NTLM message encryption, MS-WSMV
	// 2.2.9.1; ntlmseal.go) and refuses every other request with 401,
	// which is what a default Windows host does to a client that does not
	// encrypt. Set, it accepts unsealed messages too. It has no effect
	// over HTTPS.
	AllowUnencrypted bool
	// DisableSealing makes the host's NTLM unable to sign and seal: its
	// CHALLENGE never echoes NEGOTIATE_SIGN, _SEAL or _KEY_EXCH, and a
	// sealed request gets 415. No Windows host behaves so; it models a
	// server without message encryption, so a test can check that a
	// client never falls back to clear text (with AllowUnencrypted unset
	// such a host over HTTP refuses everything).
	DisableSealing bool
	// MaxShellsPerUser (default 30) and MaxEnvelopeSize in bytes (default
	// 500 KiB; larger requests get HTTP 413) are WinRM quotas.
	MaxShellsPerUser int
	MaxEnvelopeSize  int
	// MaxOperationTimeout caps how long a Receive is held when the
	// request's OperationTimeout is longer (default 60 s). Tests lower it.
	MaxOperationTimeout time.Duration
	// Machine is the computer name in faults and the NTLM challenge
	// (default: the host's ComputerName, else "LAB-HOST").
	Machine string
	// NetBIOSDomain and DNSDomain name the NTLM target (defaults: the
	// domain part of User, else "LAB"; "lab.relaylock.test").
	NetBIOSDomain string
	DNSDomain     string
	// Faults, when set, injects failures (faults.go).
	Faults *Faults
	// Kerberos, when set, makes the host a Kerberos acceptor for one
	// service principal (kerberos.go).
	Kerberos *KerberosConfig
	// Conditions are host-wide conditions (doctor.go).
	Conditions HostConditions
	// Replay maps a script name to a framed output written by hand from
	// Microsoft's documentation (remediate/testdata/hostoutput): the lab
	// answers that script with the file, its nonce replaced by the run's,
	// instead of encoding its own state, so decoders meet outputs their
	// encoders did not write.
	Replay map[string][]byte
	// Language is the host's display language for error messages
	// (messages.go): "" or "en-US" English, "de-DE" German. relaylock must
	// classify errors the same in every language.
	Language string
	// OnRun, when set, is called after each command has run (before the
	// client sees its output), e.g. to log it. It must not block.
	OnRun func(Run)
	// Logf, when set, receives the HTTP server's errors (TLS handshakes
	// a client aborted, e.g. for an untrusted certificate); they are
	// discarded otherwise.
	Logf func(format string, args ...any)
}

// Call is one request the WS-Man face answered, for assertions.
type Call struct {
	Time      time.Time
	Action    string // Create, Command, Send, Receive, Signal, Delete, the URI of an unknown action, or "" when refused before SOAP (authentication, content type, size)
	ShellID   string
	CommandID string
	Status    int    // HTTP status answered; 0 when the connection was dropped or the request abandoned
	Fault     string // the WS-Man fault subcode answered, or "injected:<kind>"
	Script    string // relaylock script name of the command, once known
	End       bool   // Send with End="true"
	// Sealed is set for a request that came with NTLM message encryption
	// (and was answered sealed); SeqNum is the NTLM sequence number the
	// client signed it with (0, 1, 2, ... on one connection).
	Sealed bool
	SeqNum uint32
}

// Run is one command the WS-Man face ran.
type Run struct {
	// ExplicitHop is set when the payload carried a second-hop
	// credential (secondhop.go); Params never hold it.
	ExplicitHop bool

	ShellID, CommandID string
	CommandLine        string
	Script             string            // relaylock script name ("" for other command lines)
	Params             map[string]string // decoded psframe parameters
	Stdout, Stderr     []byte
	ExitCode           int
	Start, End         time.Time
	// Hung is set when the process never ended by itself (PowerShell 2.0
	// reading a console-mode stdin, console.go) and was stopped.
	Hung bool
}

// WSMan is a WS-Management server for one simulated host.
type WSMan struct {
	host Host
	cfg  WSManConfig

	mu       sync.Mutex
	shells   map[string]*wsShell
	calls    []Call
	runs     []Run
	closed   bool
	active   int
	idle     *sync.Cond
	closing  chan struct{}
	commands sync.WaitGroup

	krb       *krbAcceptor // nil: no Kerberos
	krbLogons []KerberosLogon

	srv    *http.Server
	ln     net.Listener
	served chan struct{}
	scheme string
}

type wsShell struct {
	id       string
	owner    string
	codepage string
	commands map[string]*wsCommand
}

type wsCommand struct {
	id         string
	line       string
	needsStdin bool
	console    bool // WINRS_CONSOLEMODE_STDIN (not FALSE)
	stdin      bytes.Buffer
	stdinDone  bool
	started    bool
	script     string
	stdout     []byte
	stderr     []byte
	done       bool
	terminated bool
	exitCode   int
	changed    chan struct{}
	// dropNext is a fault armed by an AfterRun rule, fired on the next
	// Receive once the command is done.
	dropNext *FaultRule
}

func (c *wsCommand) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// NewWSMan returns a WS-Man server for h. Serve it with Listen, or mount
// it (it is an http.Handler) on a server whose ConnContext is
// w.ConnContext, which NTLM needs.
func NewWSMan(h Host, cfg WSManConfig) *WSMan {
	if cfg.MaxShellsPerUser <= 0 {
		cfg.MaxShellsPerUser = DefaultMaxShellsPerUser
	}
	if cfg.MaxEnvelopeSize <= 0 {
		cfg.MaxEnvelopeSize = DefaultMaxEnvelopeSize
	}
	if cfg.MaxOperationTimeout <= 0 {
		cfg.MaxOperationTimeout = 60 * time.Second
	}
	if cfg.Machine == "" {
		cfg.Machine = h.HostInfo().ComputerName
		if cfg.Machine == "" {
			cfg.Machine = "LAB-HOST"
		}
	}
	if cfg.NetBIOSDomain == "" {
		if d, _, ok := strings.Cut(cfg.User, `\`); ok && d != "" {
			cfg.NetBIOSDomain = strings.ToUpper(d)
		} else {
			cfg.NetBIOSDomain = "LAB"
		}
	}
	if cfg.DNSDomain == "" {
		cfg.DNSDomain = "lab.relaylock.test"
	}
	// The host sits behind the second hop: its directory account is the
	// WinRM account when that is a domain account (secondhop.go).
	w := &WSMan{host: withDirectory(h, directoryFor(cfg.User, cfg.Password)), cfg: cfg, shells: map[string]*wsShell{}, closing: make(chan struct{})}
	w.idle = sync.NewCond(&w.mu)
	var err error
	if w.krb, err = newKrbAcceptor(cfg.Kerberos); err != nil && cfg.Logf != nil {
		cfg.Logf("winrm: Kerberos disabled: %v", err) // lab.Start checks it first
	}
	return w
}

// Listen serves w on addr ("127.0.0.1:0" picks a port): HTTPS with cert
// when cert is non-nil, else plain HTTP. It returns once the listener is
// open; Close stops it.
func (w *WSMan) Listen(addr string, cert *tls.Certificate) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("wsman listen: %w", err)
	}
	w.scheme = "http"
	if cert != nil {
		w.scheme = "https"
		ln = tls.NewListener(ln, &tls.Config{
			Certificates: []tls.Certificate{*cert},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
		})
	}
	w.ln = ln
	w.srv = &http.Server{
		Handler:           w,
		ConnContext:       w.ConnContext,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// HTTP/1.1 only, as HTTP.sys serves WinRM; hijacking (FaultDrop)
		// needs it too.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     log.New(logWriter(w.cfg.Logf), "", 0),
	}
	w.served = make(chan struct{})
	go func() {
		defer close(w.served)
		_ = w.srv.Serve(ln)
	}()
	return nil
}

// Addr is the listening address (after Listen).
func (w *WSMan) Addr() net.Addr { return w.ln.Addr() }

// URL is the endpoint URL, http(s)://IP:port/wsman (after Listen).
func (w *WSMan) URL() string { return w.scheme + "://" + w.ln.Addr().String() + "/wsman" }

// Close stops the server: it ends pending long-polls, closes every
// connection, waits for running handlers and commands, and leaves no
// goroutine behind.
func (w *WSMan) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.closing)
	w.mu.Unlock()
	var err error
	if w.srv != nil {
		err = w.srv.Close()
		<-w.served
	}
	w.mu.Lock()
	for w.active > 0 {
		w.idle.Wait()
	}
	w.mu.Unlock()
	w.commands.Wait()
	return err
}

// Calls returns the requests answered so far, in order (the most recent
// 20000).
func (w *WSMan) Calls() []Call {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Call(nil), w.calls...)
}

// SealStats counts, over calls, the SOAP calls (those with an Action),
// how many of them came sealed, and the highest NTLM sequence number
// seen: what a test of NTLM message encryption checks.
func SealStats(calls []Call) (soap, sealed int, maxSeq uint32) {
	for _, c := range calls {
		if c.Action == "" {
			continue
		}
		soap++
		if c.Sealed {
			sealed++
			maxSeq = max(maxSeq, c.SeqNum)
		}
	}
	return soap, sealed, maxSeq
}

// Runs returns the commands run so far, in order of completion (the most
// recent 2000).
func (w *WSMan) Runs() []Run {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Run(nil), w.runs...)
}

// CountCalls counts answered requests of one action ("Receive", ...).
func (w *WSMan) CountCalls(action string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.calls {
		if c.Action == action {
			n++
		}
	}
	return n
}

// OpenShells is the number of shells not yet deleted.
func (w *WSMan) OpenShells() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.shells)
}

// ErrScriptNotRun is returned by Verify for an expected script that never ran.
var ErrScriptNotRun = errors.New("expected script never ran")

// Verify returns an error wrapping ErrScriptNotRun naming every script in
// scripts that no command ran, so a test can fail on an expected script
// that was never run.
func (w *WSMan) Verify(scripts ...string) error {
	ran := map[string]bool{}
	for _, r := range w.Runs() {
		ran[r.Script] = true
	}
	var missing []string
	for _, s := range scripts {
		if !ran[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrScriptNotRun, strings.Join(missing, ", "))
	}
	return nil
}

// ---- HTTP layer -------------------------------------------------------------

type connKey struct{}

// connState is per TCP connection: NTLM authenticates the connection, not
// the request (MS-NLMP 3.1.5.1; docs/winrm.md §3.2).
type connState struct {
	mu            sync.Mutex
	challenge     [8]byte
	chalFlags     uint32 // the flags of the CHALLENGE sent
	pending       bool
	authenticated bool
	// sealing is the NTLM session's signing and sealing state once the
	// connection has authenticated with NTLM and negotiated sealing.
	sealing *ntlmSealing
}

// reset ends the connection's authentication (and NTLM session).
func (cs *connState) reset() {
	cs.pending, cs.authenticated, cs.sealing = false, false, nil
}

// ConnContext attaches per-connection authentication state; set it as
// http.Server.ConnContext when mounting the handler on your own server.
func (w *WSMan) ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{})
}

// ServeHTTP implements http.Handler.
func (w *WSMan) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		rw.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.active++
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.active--
		if w.active == 0 {
			w.idle.Broadcast()
		}
		w.mu.Unlock()
	}()

	rw.Header().Set("Server", "Microsoft-HTTPAPI/2.0")
	if !strings.EqualFold(r.URL.Path, "/wsman") {
		w.record(Call{Status: http.StatusNotFound})
		rw.WriteHeader(http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.record(Call{Status: http.StatusMethodNotAllowed})
		rw.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	// A sealed message is a little larger than the SOAP it carries: allow
	// for the framing, and apply MaxEnvelopeSize to the SOAP.
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(w.cfg.MaxEnvelopeSize)+sealOverhead+1))
	if err != nil {
		return
	}
	if !w.authenticate(rw, r, body) {
		return
	}
	if len(body) == 0 {
		// An authenticated empty POST: what pywinrm, relaylock and
		// masterzen's NewEncryption send to finish the handshake before
		// sealing.
		w.record(Call{Status: http.StatusOK})
		rw.WriteHeader(http.StatusOK)
		return
	}
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	sealed := mt == "multipart/encrypted" || mt == "multipart/x-multi-encrypted"
	if sealed && w.cfg.DisableSealing {
		// A host that cannot seal (DisableSealing) says so with 415.
		w.record(Call{Status: http.StatusUnsupportedMediaType, Fault: "message-encryption-unsupported"})
		rw.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	if sealed {
		// NTLM message encryption (MS-WSMV 2.2.9.1): unseal the SOAP
		// message, handle it, and seal the answer (ntlmseal.go).
		cs, _ := r.Context().Value(connKey{}).(*connState)
		plain, seq, ok := w.unsealRequest(rw, cs, mt, params, body)
		if !ok {
			return
		}
		sw := &sealWriter{rw: rw, cs: cs}
		defer sw.finish()
		rw, body = sw, plain
		r = r.WithContext(context.WithValue(r.Context(), sealedKey{}, seq))
		mt = "application/soap+xml"
	} else if r.TLS == nil && !w.cfg.AllowUnencrypted {
		// AllowUnencrypted=false: an unsealed request over HTTP is refused
		// with 401 (docs/winrm.md §3.5, jborean93 in hashicorp/packer#6205).
		w.record(Call{Status: http.StatusUnauthorized, Fault: "unencrypted"})
		w.unauthorized(rw, "")
		return
	}
	if mt != "application/soap+xml" {
		// WinRM accepts only SOAP 1.2 over HTTP.
		w.record(Call{Status: http.StatusUnsupportedMediaType})
		rw.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	if len(body) > w.cfg.MaxEnvelopeSize {
		// Over MaxEnvelopeSizekb: Windows answers 413 (masterzen/winrm#156,
		// ansible-collections/ansible.windows#391).
		w.record(Call{Status: http.StatusRequestEntityTooLarge})
		rw.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	var env reqEnvelope
	if err := xml.Unmarshal(body, &env); err != nil {
		w.fault(rw, sealedCall(r, Call{}), "", faultSchema)
		return
	}
	w.handleSOAP(rw, r, &env)
}

// authenticate checks Basic credentials or runs the NTLM handshake. It
// writes the 401 itself and returns false when the request may not go on.
func (w *WSMan) authenticate(rw http.ResponseWriter, r *http.Request, body []byte) bool {
	cs, _ := r.Context().Value(connKey{}).(*connState)
	if cs == nil {
		cs = &connState{} // mounted without ConnContext: NTLM cannot work
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	switch {
	case scheme == "":
		cs.mu.Lock()
		ok := cs.authenticated
		cs.mu.Unlock()
		if ok {
			return true
		}
	case strings.EqualFold(scheme, "Basic") && !w.cfg.DisableBasic:
		// WinRM's Basic logs on local accounts only ("Authentication for
		// Remote Connections": Basic is not usable with domain
		// accounts), so a host whose one account is a domain account
		// answers Basic with the same 401 as a wrong password.
		if u, p, ok := r.BasicAuth(); ok && w.basicUserMatches(u) && p == w.cfg.Password {
			return true
		}
		if u, _, ok := r.BasicAuth(); ok {
			w.record(Call{Status: http.StatusUnauthorized, Fault: w.basicRefusal(u)})
			w.unauthorized(rw, "")
			return false
		}
	case (strings.EqualFold(scheme, "Negotiate") || strings.EqualFold(scheme, "Kerberos")) && w.krb != nil && isKerberosToken(decodeToken(tok)):
		cs.mu.Lock()
		defer cs.mu.Unlock()
		return w.acceptKerberos(rw, scheme, decodeToken(tok), cs)
	case (strings.EqualFold(scheme, "Negotiate") || strings.EqualFold(scheme, "NTLM")) && !w.cfg.DisableNTLM:
		raw, err := base64.StdEncoding.DecodeString(tok)
		if err != nil {
			break
		}
		typ, err := ntlmMessageType(raw)
		if err != nil {
			break
		}
		cs.mu.Lock()
		defer cs.mu.Unlock()
		switch typ {
		case 1:
			neg, err := ntlmNegotiateFlags(raw)
			if err != nil {
				break
			}
			flags := challengeFlags(neg, !w.cfg.DisableSealing)
			msg, chal, err := ntlmChallenge(w.cfg.NetBIOSDomain, strings.ToUpper(w.cfg.Machine), w.cfg.DNSDomain, flags)
			if err != nil {
				break
			}
			cs.reset()
			cs.challenge, cs.chalFlags, cs.pending = chal, flags, true
			w.record(Call{Status: http.StatusUnauthorized, Fault: "ntlm-challenge"})
			rw.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(msg))
			rw.Header().Set("Content-Length", "0")
			rw.WriteHeader(http.StatusUnauthorized)
			return false
		case 3:
			if !cs.pending {
				break
			}
			cs.pending = false
			a, err := parseNTLMAuthenticate(raw)
			if err != nil || !w.userMatches(a.User, a.Domain) {
				break
			}
			baseKey, ok := acceptNTLMv2(a, w.cfg.Password, cs.challenge)
			if !ok {
				break
			}
			// The session uses what both sides agreed on: the client's
			// final flags, within what the CHALLENGE offered.
			flags := a.Flags & cs.chalFlags
			exported, err := exportedSessionKey(flags, baseKey, a.EncryptedRandomSessionKey)
			if err != nil {
				break
			}
			if cs.sealing, err = newServerSealing(flags, exported); err != nil {
				break
			}
			cs.authenticated = true
			return true
		}
	}
	w.record(Call{Status: http.StatusUnauthorized})
	w.unauthorized(rw, "")
	return false
}

// userMatches compares a presented user name (and NTLM domain) with the
// configured account, case-insensitively as Windows does. The NTLM domain
// may be empty, the NetBIOS or DNS domain, or the computer name (a local
// account). Basic has its own rule (basicUserMatches).
func (w *WSMan) userMatches(user, domain string) bool {
	wantDom, wantName, hasDom := strings.Cut(w.cfg.User, `\`)
	if !hasDom {
		wantName, wantDom = w.cfg.User, ""
	}
	if d, n, ok := strings.Cut(user, `\`); ok {
		domain, user = d, n
	} else if n, d, ok := strings.Cut(user, "@"); ok {
		user, domain = n, d
	}
	if !strings.EqualFold(user, wantName) {
		return false
	}
	switch {
	case domain == "", strings.EqualFold(domain, w.cfg.NetBIOSDomain), strings.EqualFold(domain, w.cfg.DNSDomain),
		strings.EqualFold(domain, w.cfg.Machine), wantDom != "" && strings.EqualFold(domain, wantDom):
		return true
	}
	return false
}

// basicUserMatches is userMatches for Basic: the host's account must be
// a local one, and the name may carry no domain but the computer's own
// ("MACHINE\\name" or ".\\name", which Windows resolves to the local
// account database).
func (w *WSMan) basicUserMatches(user string) bool {
	if isDomainAccount(w.cfg.User) {
		return false
	}
	name, domain := user, ""
	if d, n, ok := strings.Cut(user, `\`); ok {
		domain, name = d, n
	} else if strings.Contains(user, "@") {
		return false // a UPN names a domain account
	}
	if domain != "" && domain != "." && !strings.EqualFold(domain, w.cfg.Machine) {
		return false
	}
	return strings.EqualFold(name, w.cfg.User)
}

// basicRefusal names, in the call record, why a Basic logon was refused:
// "basic-domain-account" when a domain account was presented or is the
// host's only account (Windows answers both with a bare 401), else
// "basic-bad-credentials".
func (w *WSMan) basicRefusal(presented string) string {
	if isDomainAccount(w.cfg.User) || strings.Contains(presented, "@") {
		return "basic-domain-account"
	}
	if d, _, ok := strings.Cut(presented, `\`); ok && d != "." && !strings.EqualFold(d, w.cfg.Machine) {
		return "basic-domain-account"
	}
	return "basic-bad-credentials"
}

// unauthorized writes the 401 a Windows host sends: no body, no SOAP
// content type (which is what makes masterzen/winrm report
// "http response error: 401 - invalid content type"), and the schemes it
// offers.
func (w *WSMan) unauthorized(rw http.ResponseWriter, _ string) {
	h := rw.Header()
	if !w.cfg.DisableNTLM || w.krb != nil {
		h.Add("WWW-Authenticate", "Negotiate")
	}
	if w.krb != nil {
		h.Add("WWW-Authenticate", "Kerberos")
	}
	if !w.cfg.DisableBasic {
		h.Add("WWW-Authenticate", `Basic realm="WSMAN"`)
	}
	h.Set("Content-Length", "0")
	rw.WriteHeader(http.StatusUnauthorized)
}

// Recording limits: a lab left running for days (relaylock lab) keeps
// the most recent calls and runs only.
const (
	maxCalls = 20000
	maxRuns  = 2000
)

func (w *WSMan) record(c Call) {
	c.Time = time.Now()
	w.mu.Lock()
	w.calls = appendBounded(w.calls, c, maxCalls)
	w.mu.Unlock()
}

// appendBounded appends v and drops the oldest tenth when s exceeds max.
func appendBounded[T any](s []T, v T, max int) []T {
	s = append(s, v)
	if len(s) > max {
		s = append(s[:0:0], s[len(s)-max*9/10:]...)
	}
	return s
}

// logWriter turns a Logf into the io.Writer log.Logger needs.
type logWriter func(format string, args ...any)

func (f logWriter) Write(p []byte) (int, error) {
	if f != nil {
		f("winrm: %s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
