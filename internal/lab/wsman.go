package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// This file is the lab's WS-Management face: the subset of MS-WSMV that
// WinRS clients use to run a command in a cmd shell (winrm.md §2), spoken
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

// Limits, as documented for Windows (winrm.md §0.5, §2.7).
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
	// AllowUnencrypted is WinRM's service setting of that name. The lab
	// cannot seal messages (NTLM message encryption is not implemented),
	// so on a plain-HTTP listener every request is refused with 401 unless
	// this is set, which is what a default Windows host does to a client
	// that does not encrypt. It has no effect over HTTPS.
	AllowUnencrypted bool
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
}

// Run is one command the WS-Man face ran.
type Run struct {
	ShellID, CommandID string
	CommandLine        string
	Script             string            // relaylock script name ("" for other command lines)
	Params             map[string]string // decoded psframe parameters
	Stdout, Stderr     []byte
	ExitCode           int
	Start, End         time.Time
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
	w := &WSMan{host: h, cfg: cfg, shells: map[string]*wsShell{}, closing: make(chan struct{})}
	w.idle = sync.NewCond(&w.mu)
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
		ErrorLog:     nil,
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
// the request (MS-NLMP 3.1.5.1; winrm.md §3.2).
type connState struct {
	mu            sync.Mutex
	challenge     [8]byte
	pending       bool
	authenticated bool
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
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(w.cfg.MaxEnvelopeSize)+1))
	if err != nil {
		return
	}
	if !w.authenticate(rw, r, body) {
		return
	}
	if len(body) == 0 {
		// An authenticated empty POST: what pywinrm and masterzen's
		// NewEncryption send to finish the handshake before sealing.
		w.record(Call{Status: http.StatusOK})
		rw.WriteHeader(http.StatusOK)
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/encrypted" || mt == "multipart/x-multi-encrypted" {
		// NTLM message encryption (MS-WSMV 2.2.9.1): Windows would unseal
		// it; the lab cannot, and says so with 415 (documented limit: use
		// HTTPS, or plain HTTP with AllowUnencrypted).
		w.record(Call{Status: http.StatusUnsupportedMediaType, Fault: "message-encryption-unsupported"})
		rw.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	if r.TLS == nil && !w.cfg.AllowUnencrypted {
		// AllowUnencrypted=false: an unsealed request over HTTP is refused
		// with 401 (winrm.md §3.5, jborean93 in hashicorp/packer#6205).
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
		w.fault(rw, Call{}, "", faultSchema)
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
		if u, p, ok := r.BasicAuth(); ok && w.userMatches(u, "") && p == w.cfg.Password {
			return true
		}
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
			msg, chal, err := ntlmChallenge(w.cfg.NetBIOSDomain, strings.ToUpper(w.cfg.Machine), w.cfg.DNSDomain)
			if err != nil {
				break
			}
			cs.challenge, cs.pending, cs.authenticated = chal, true, false
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
			if err != nil || !w.userMatches(a.User, a.Domain) || !verifyNTLMv2(a, w.cfg.Password, cs.challenge) {
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
// account); a Basic user may carry "DOMAIN\" or "@domain".
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

// unauthorized writes the 401 a Windows host sends: no body, no SOAP
// content type (which is what makes masterzen/winrm report
// "http response error: 401 - invalid content type"), and the schemes it
// offers.
func (w *WSMan) unauthorized(rw http.ResponseWriter, _ string) {
	h := rw.Header()
	if !w.cfg.DisableNTLM {
		h.Add("WWW-Authenticate", "Negotiate")
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

// ---- SOAP layer -------------------------------------------------------------

type nameValue struct {
	Name  string `xml:"Name,attr"`
	Value string `xml:",chardata"`
}

type reqEnvelope struct {
	XMLName xml.Name `xml:"http://www.w3.org/2003/05/soap-envelope Envelope"`
	Header  struct {
		Action           string `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing Action"`
		MessageID        string `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing MessageID"`
		ResourceURI      string `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd ResourceURI"`
		OperationTimeout string `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd OperationTimeout"`
		MaxEnvelopeSize  string `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd MaxEnvelopeSize"`
		SelectorSet      struct {
			Selectors []nameValue `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd Selector"`
		} `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd SelectorSet"`
		OptionSet struct {
			Options []nameValue `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd Option"`
		} `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd OptionSet"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Header"`
	Body struct {
		Shell *struct {
			InputStreams  string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell InputStreams"`
			OutputStreams string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell OutputStreams"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Shell"`
		CommandLine *struct {
			Command   string   `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Command"`
			Arguments []string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Arguments"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell CommandLine"`
		Send *struct {
			Streams []struct {
				Name      string `xml:"Name,attr"`
				CommandID string `xml:"CommandId,attr"`
				End       string `xml:"End,attr"`
				Data      string `xml:",chardata"`
			} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Stream"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Send"`
		Receive *struct {
			DesiredStream struct {
				CommandID string `xml:"CommandId,attr"`
				Streams   string `xml:",chardata"`
			} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell DesiredStream"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Receive"`
		Signal *struct {
			CommandID string `xml:"CommandId,attr"`
			Code      string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Code"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Signal"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
}

func (e *reqEnvelope) selector(name string) (string, bool) {
	for _, s := range e.Header.SelectorSet.Selectors {
		if s.Name == name {
			return strings.TrimSpace(s.Value), true
		}
	}
	return "", false
}

func (e *reqEnvelope) option(name string) string {
	for _, o := range e.Header.OptionSet.Options {
		if o.Name == name {
			return strings.TrimSpace(o.Value)
		}
	}
	return ""
}

func (w *WSMan) handleSOAP(rw http.ResponseWriter, r *http.Request, env *reqEnvelope) {
	action := strings.TrimSpace(env.Header.Action)
	name, known := shortAction[action]
	if !known {
		w.fault(rw, Call{Action: action}, env.Header.MessageID, faultActionNotSupported)
		return
	}
	call := Call{Action: name}
	call.ShellID, _ = env.selector("ShellId")
	if rule := w.cfg.Faults.match(name, "", false); rule != nil {
		if !w.inject(rw, r, call, env.Header.MessageID, rule) {
			return
		}
	}
	if strings.TrimSpace(env.Header.ResourceURI) != resourceCmd {
		w.fault(rw, call, env.Header.MessageID, faultResourceURI)
		return
	}
	switch name {
	case "Create":
		w.create(rw, r, env, call)
	case "Command":
		w.command(rw, env, call)
	case "Send":
		w.send(rw, r, env, call)
	case "Receive":
		w.receive(rw, r, env, call)
	case "Signal":
		w.signal(rw, env, call)
	case "Delete":
		w.delete(rw, env, call)
	}
}

// inject applies a fault rule. It returns true when the request should
// then be handled normally (FaultDelay).
func (w *WSMan) inject(rw http.ResponseWriter, r *http.Request, call Call, relatesTo string, rule *FaultRule) bool {
	call.Fault = "injected:" + rule.Kind.String()
	switch rule.Kind {
	case FaultDelay:
		t := time.NewTimer(rule.Delay)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-r.Context().Done():
		case <-w.closing:
		}
		w.record(call)
		return false
	case FaultDrop:
		w.record(call)
		if hj, ok := rw.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return false
			}
		}
		panic(http.ErrAbortHandler) // closes the connection without a response
	case FaultHang:
		w.record(call)
		select {
		case <-r.Context().Done():
		case <-w.closing:
		}
		return false
	case FaultAccessDenied:
		w.fault(rw, call, relatesTo, faultAccessDenied)
		return false
	default:
		w.fault(rw, call, relatesTo, faultInternal)
		return false
	}
}

func (w *WSMan) create(rw http.ResponseWriter, r *http.Request, env *reqEnvelope, call Call) {
	if env.Body.Shell == nil {
		w.fault(rw, call, env.Header.MessageID, faultSchema)
		return
	}
	owner := w.cfg.User
	w.mu.Lock()
	n := 0
	for _, s := range w.shells {
		if s.owner == owner {
			n++
		}
	}
	if n >= w.cfg.MaxShellsPerUser {
		w.mu.Unlock()
		f := faultMaxShells
		f.reason = fmt.Sprintf(f.reason, w.cfg.MaxShellsPerUser)
		w.fault(rw, call, env.Header.MessageID, f)
		return
	}
	id := newGUID()
	w.shells[id] = &wsShell{id: id, owner: owner, codepage: env.option("WINRS_CODEPAGE"), commands: map[string]*wsCommand{}}
	w.mu.Unlock()
	call.ShellID = id
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	clientIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	body := `<x:ResourceCreated><a:Address>` + esc(scheme+"://"+r.Host+"/wsman") + `</a:Address><a:ReferenceParameters>` +
		`<w:ResourceURI>` + resourceCmd + `</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">` + id +
		`</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>` +
		`<rsp:Shell><rsp:ShellId>` + id + `</rsp:ShellId><rsp:ResourceUri>` + resourceCmd + `</rsp:ResourceUri>` +
		`<rsp:Owner>` + esc(owner) + `</rsp:Owner><rsp:ClientIP>` + esc(clientIP) + `</rsp:ClientIP>` +
		`<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin</rsp:InputStreams>` +
		`<rsp:OutputStreams>stdout stderr</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>` +
		`<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>`
	w.reply(rw, call, env.Header.MessageID, "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse", body)
}

// lookupShell finds the shell named by the ShellId selector; w.mu held.
func (w *WSMan) lookupShell(env *reqEnvelope) (*wsShell, *wsFault) {
	id, ok := env.selector("ShellId")
	if !ok || id == "" {
		f := faultNoShellSelector
		return nil, &f
	}
	s := w.shells[strings.ToUpper(id)]
	if s == nil {
		f := faultShellNotFound
		f.reason = fmt.Sprintf(f.reason, id)
		return nil, &f
	}
	return s, nil
}

func (w *WSMan) command(rw http.ResponseWriter, env *reqEnvelope, call Call) {
	cl := env.Body.CommandLine
	if cl == nil {
		w.fault(rw, call, env.Header.MessageID, faultSchema)
		return
	}
	// WinRS joins the command and its arguments with spaces into the
	// command line given to cmd.exe (WINRS_SKIP_CMD_SHELL=FALSE).
	line := strings.TrimSpace(cl.Command)
	for _, a := range cl.Arguments {
		line += " " + a
	}
	w.mu.Lock()
	s, f := w.lookupShell(env)
	if f != nil {
		w.mu.Unlock()
		w.fault(rw, call, env.Header.MessageID, *f)
		return
	}
	c := &wsCommand{id: newGUID(), line: line, needsStdin: readsStdin(line), changed: make(chan struct{})}
	s.commands[c.id] = c
	if !c.needsStdin {
		w.startLocked(s, c)
	}
	w.mu.Unlock()
	call.CommandID = c.id
	w.reply(rw, call, env.Header.MessageID, nsShell+"/CommandResponse",
		`<rsp:CommandResponse><rsp:CommandId>`+c.id+`</rsp:CommandId></rsp:CommandResponse>`)
}

// startLocked runs c in the background; w.mu held.
func (w *WSMan) startLocked(s *wsShell, c *wsCommand) {
	c.started = true
	stdin := append([]byte(nil), c.stdin.Bytes()...)
	c.stdin.Reset()
	line := c.line
	run := Run{ShellID: s.id, CommandID: c.id, CommandLine: line, Start: time.Now()}
	if readsStdin(line) {
		if src, params, err := psframe.DecodePayload(stdin); err == nil {
			run.Params = params
			run.Script, _ = ScriptName(src)
		}
	}
	c.script = run.Script
	w.commands.Add(1)
	go func() {
		defer w.commands.Done()
		stdout, stderr, code := Dispatch(w.host, line, stdin)
		run.End = time.Now()
		run.Stdout, run.Stderr, run.ExitCode = stdout, stderr, code
		w.mu.Lock()
		defer w.mu.Unlock()
		w.runs = appendBounded(w.runs, run, maxRuns)
		if c.done {
			return // terminated meanwhile: the output is lost, as on Windows
		}
		c.stdout, c.stderr, c.exitCode, c.done = stdout, stderr, code, true
		c.notify()
	}()
}

func (w *WSMan) send(rw http.ResponseWriter, r *http.Request, env *reqEnvelope, call Call) {
	if env.Body.Send == nil || len(env.Body.Send.Streams) == 0 {
		w.fault(rw, call, env.Header.MessageID, faultSchema)
		return
	}
	w.mu.Lock()
	s, f := w.lookupShell(env)
	if f != nil {
		w.mu.Unlock()
		w.fault(rw, call, env.Header.MessageID, *f)
		return
	}
	var (
		completed *wsCommand
		script    string
	)
	for _, st := range env.Body.Send.Streams {
		c := s.commands[strings.ToUpper(st.CommandID)]
		call.CommandID = st.CommandID
		// A terminated command, or one interrupted (ctrl_c) before its
		// stdin was complete, has no process left to take input.
		if c == nil || c.terminated || (c.done && !c.started) {
			w.mu.Unlock()
			w.fault(rw, call, env.Header.MessageID, faultInvalidParameter)
			return
		}
		if st.Name != "stdin" || c.stdinDone {
			w.mu.Unlock()
			w.fault(rw, call, env.Header.MessageID, faultInvalidParameter)
			return
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(st.Data))
		if err != nil || c.stdin.Len()+len(data) > maxStdin {
			w.mu.Unlock()
			w.fault(rw, call, env.Header.MessageID, faultInvalidParameter)
			return
		}
		if !c.started {
			c.stdin.Write(data)
		}
		if st.End == "true" || st.End == "1" {
			c.stdinDone = true
			call.End = true
			if c.needsStdin && !c.started {
				completed = c
				if src, _, err := psframe.DecodePayload(c.stdin.Bytes()); err == nil {
					script, _ = ScriptName(src)
				}
			}
		}
	}
	w.mu.Unlock()
	call.Script = script
	if completed != nil && script != "" {
		if rule := w.cfg.Faults.match("Send", script, false); rule != nil {
			if !w.inject(rw, r, call, env.Header.MessageID, rule) {
				return
			}
		}
		if rule := w.cfg.Faults.match("Receive", script, true); rule != nil {
			w.mu.Lock()
			completed.dropNext = rule
			w.mu.Unlock()
		}
	}
	if completed != nil {
		w.mu.Lock()
		if !completed.started && !completed.done {
			w.startLocked(s, completed)
		}
		w.mu.Unlock()
	}
	w.reply(rw, call, env.Header.MessageID, nsShell+"/SendResponse", `<rsp:SendResponse/>`)
}

func (w *WSMan) receive(rw http.ResponseWriter, r *http.Request, env *reqEnvelope, call Call) {
	if env.Body.Receive == nil {
		w.fault(rw, call, env.Header.MessageID, faultSchema)
		return
	}
	cid := strings.ToUpper(strings.TrimSpace(env.Body.Receive.DesiredStream.CommandID))
	call.CommandID = cid
	wait := parseDuration(env.Header.OperationTimeout, 60*time.Second)
	if wait > w.cfg.MaxOperationTimeout {
		wait = w.cfg.MaxOperationTimeout
	}
	// The response must fit the client's MaxEnvelopeSize: base64 grows
	// output by 4/3, and the envelope needs room for itself.
	budget := w.cfg.MaxEnvelopeSize
	if n, err := strconv.Atoi(strings.TrimSpace(env.Header.MaxEnvelopeSize)); err == nil && n > 0 && n < budget {
		budget = n
	}
	budget = (budget - 4096) * 3 / 4
	if budget < 1024 {
		budget = 1024
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var c *wsCommand
	for {
		w.mu.Lock()
		s, f := w.lookupShell(env)
		if f != nil {
			w.mu.Unlock()
			w.fault(rw, call, env.Header.MessageID, *f)
			return
		}
		// A terminated command no longer exists, but a Receive that was
		// already waiting when the signal came keeps its command and gets
		// its final state.
		if c == nil {
			if c = s.commands[cid]; c == nil {
				w.mu.Unlock()
				w.fault(rw, call, env.Header.MessageID, faultInvalidParameter)
				return
			}
		}
		call.Script = c.script
		if c.done && c.dropNext != nil {
			rule := c.dropNext
			c.dropNext = nil
			w.mu.Unlock()
			w.inject(rw, r, call, env.Header.MessageID, rule)
			return
		}
		if len(c.stdout) > 0 || len(c.stderr) > 0 || c.done {
			body := w.receiveBodyLocked(c, budget)
			w.mu.Unlock()
			w.reply(rw, call, env.Header.MessageID, nsShell+"/ReceiveResponse", body)
			return
		}
		changed := c.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			w.fault(rw, call, env.Header.MessageID, faultTimedOut)
			return
		case <-r.Context().Done():
			call.Fault = "client-gone"
			w.record(call)
			return
		case <-w.closing:
			call.Fault = "server-closed"
			w.record(call)
			return
		}
	}
}

// receiveBodyLocked takes up to budget bytes of output and, once all
// output is taken from a finished command, reports Done with the exit
// code (pywinrm requires ExitCode with Done: winrm.md §2.4); w.mu held.
func (w *WSMan) receiveBodyLocked(c *wsCommand, budget int) string {
	var b strings.Builder
	b.WriteString(`<rsp:ReceiveResponse>`)
	take := func(name string, buf *[]byte) {
		if len(*buf) == 0 || budget <= 0 {
			return
		}
		n := min(len(*buf), budget)
		fmt.Fprintf(&b, `<rsp:Stream Name="%s" CommandId="%s">%s</rsp:Stream>`, name, c.id, base64.StdEncoding.EncodeToString((*buf)[:n]))
		*buf = (*buf)[n:]
		budget -= n
	}
	take("stdout", &c.stdout)
	take("stderr", &c.stderr)
	if c.done && len(c.stdout) == 0 && len(c.stderr) == 0 {
		fmt.Fprintf(&b, `<rsp:Stream Name="stdout" CommandId="%s" End="true"></rsp:Stream>`, c.id)
		fmt.Fprintf(&b, `<rsp:Stream Name="stderr" CommandId="%s" End="true"></rsp:Stream>`, c.id)
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>`, c.id, stateDone, c.exitCode)
	} else {
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"/>`, c.id, stateRunning)
	}
	b.WriteString(`</rsp:ReceiveResponse>`)
	return b.String()
}

func (w *WSMan) signal(rw http.ResponseWriter, env *reqEnvelope, call Call) {
	sig := env.Body.Signal
	if sig == nil {
		w.fault(rw, call, env.Header.MessageID, faultSchema)
		return
	}
	call.CommandID = sig.CommandID
	w.mu.Lock()
	s, f := w.lookupShell(env)
	if f != nil {
		w.mu.Unlock()
		w.fault(rw, call, env.Header.MessageID, *f)
		return
	}
	c := s.commands[strings.ToUpper(sig.CommandID)]
	if c == nil || c.terminated {
		w.mu.Unlock()
		w.fault(rw, call, env.Header.MessageID, faultInvalidParameter)
		return
	}
	switch strings.TrimSpace(sig.Code) {
	case signalTerminate:
		// MS-WSMV 3.1.4.12: after terminate the command no longer exists.
		// masterzen and pywinrm send it after every command, also when
		// it is done (MS-WSMV 3.1.4.14 asks for it).
		if !c.done {
			c.exitCode, c.done = exitCtrlC, true
		}
		c.terminated = true
		delete(s.commands, c.id)
		c.notify()
	case signalCtrlC, signalCtrlBrk:
		if !c.done {
			c.exitCode, c.done = exitCtrlC, true
			c.notify()
		}
	default:
		w.mu.Unlock()
		w.fault(rw, call, env.Header.MessageID, faultInvalidParameter)
		return
	}
	w.mu.Unlock()
	w.reply(rw, call, env.Header.MessageID, nsShell+"/SignalResponse", `<rsp:SignalResponse/>`)
}

func (w *WSMan) delete(rw http.ResponseWriter, env *reqEnvelope, call Call) {
	w.mu.Lock()
	s, f := w.lookupShell(env)
	if f != nil {
		w.mu.Unlock()
		w.fault(rw, call, env.Header.MessageID, *f)
		return
	}
	delete(w.shells, s.id)
	for _, c := range s.commands {
		if !c.done {
			c.exitCode, c.done = exitCtrlC, true
		}
		c.terminated = true
		c.notify()
	}
	w.mu.Unlock()
	w.reply(rw, call, env.Header.MessageID, "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse", "")
}

// ---- responses --------------------------------------------------------------

const envelopeOpen = `<s:Envelope xml:lang="en-US" xmlns:s="` + nsSOAP + `" xmlns:a="` + nsAddressing +
	`" xmlns:x="` + nsTransfer + `" xmlns:w="` + nsWSMan + `" xmlns:rsp="` + nsShell +
	`" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">`

func responseHeader(action, relatesTo string) string {
	return `<s:Header><a:Action>` + action + `</a:Action><a:MessageID>uuid:` + newGUID() + `</a:MessageID>` +
		`<a:To>` + anonymousRole + `</a:To><a:RelatesTo>` + esc(strings.TrimSpace(relatesTo)) + `</a:RelatesTo></s:Header>`
}

func (w *WSMan) reply(rw http.ResponseWriter, call Call, relatesTo, action, body string) {
	call.Status = http.StatusOK
	w.record(call)
	var b strings.Builder
	b.WriteString(envelopeOpen)
	b.WriteString(responseHeader(action, relatesTo))
	if body == "" {
		b.WriteString(`<s:Body></s:Body>`)
	} else {
		b.WriteString(`<s:Body>` + body + `</s:Body>`)
	}
	b.WriteString(`</s:Envelope>`)
	writeSOAP(rw, http.StatusOK, b.String())
}

func writeSOAP(rw http.ResponseWriter, status int, s string) {
	rw.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	rw.Header().Set("Content-Length", strconv.Itoa(len(s)))
	rw.WriteHeader(status)
	_, _ = io.WriteString(rw, s)
}

// wsFault is a WS-Management fault (MS-WSMV 2.2.4.43; DSP0226 §14).
type wsFault struct {
	code    string // s:Sender or s:Receiver
	subcode string // w:..., a:...
	reason  string
	wsman   uint64 // WSManFault Code (a Win32 or WinRM error number)
}

// Faults as Windows words them. Reasons end with a space, as Windows'
// messages do.
var (
	// winrm.md §2.5; masterzen fixture_test.go operationTimeoutResponse.
	faultTimedOut = wsFault{"s:Receiver", "w:TimedOut",
		"The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ", 2150858793}
	// WinRb/WinRM#253, jborean93/pypsrp#22 (captured from Windows).
	faultShellNotFound = wsFault{"s:Sender", "w:InvalidSelectors",
		"The request for the Windows Remote Shell with ShellId %s failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. Provide the correct ShellId or create a new shell and retry the operation. ", 2150858843}
	// Openwsman/openwsman#83 (winrs against Windows 7).
	faultNoShellSelector = wsFault{"s:Sender", "w:InvalidSelectors",
		"The Windows Remote Shell cannot process the request because it requires the following selector: ShellId. ", 2150858842}
	// masterzen/winrm#80 (a captured Windows fault): ERROR_INVALID_PARAMETER.
	faultInvalidParameter = wsFault{"s:Sender", "w:InvalidParameter", "The parameter is incorrect. ", 87}
	// Vagrant/test-kitchen reports (hashicorp/vagrant#7489): 0x803381A5.
	faultMaxShells = wsFault{"s:Receiver", "w:InternalError",
		"The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. ", 2150859173}
	// pypsrp reports "(Code: 5, ..., Reason: Access is denied.)" for a
	// user not allowed to use WinRM; DSP0226 wsman:AccessDenied.
	faultAccessDenied = wsFault{"s:Sender", "w:AccessDenied", "Access is denied. ", 5}
	faultInternal     = wsFault{"s:Receiver", "w:InternalError",
		"The WS-Management service cannot process the request. The service encountered an internal error. ", 2147500037}
	faultActionNotSupported = wsFault{"s:Sender", "a:ActionNotSupported",
		"The WS-Management service cannot process the request because the action is not supported by the resource. ", 2150858754}
	faultResourceURI = wsFault{"s:Sender", "w:DestinationUnreachable",
		"The WS-Management service cannot process the request. The resource URI is not supported by the lab: only " + resourceCmd + " is. ", 2150858770}
	faultSchema = wsFault{"s:Sender", "w:SchemaValidationError",
		"The SOAP XML in the message does not match the corresponding XML schema definition. Change the XML and retry. ", 2150858817}
)

func (w *WSMan) fault(rw http.ResponseWriter, call Call, relatesTo string, f wsFault) {
	call.Status = http.StatusInternalServerError
	if call.Fault == "" {
		call.Fault = f.subcode
	}
	w.record(call)
	s := envelopeOpen + responseHeader(actionFault, relatesTo) +
		`<s:Body><s:Fault><s:Code><s:Value>` + f.code + `</s:Value><s:Subcode><s:Value>` + f.subcode +
		`</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">` + esc(f.reason) + `</s:Text></s:Reason>` +
		`<s:Detail><f:WSManFault xmlns:f="` + nsWSManFault + `" Code="` + strconv.FormatUint(f.wsman, 10) +
		`" Machine="` + esc(w.cfg.Machine) + `"><f:Message>` + esc(f.reason) + `</f:Message></f:WSManFault></s:Detail>` +
		`</s:Fault></s:Body></s:Envelope>`
	writeSOAP(rw, http.StatusInternalServerError, s)
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// newGUID returns a random (version 4) GUID in the upper-case form
// Windows uses for ShellId and CommandId.
func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

// parseDuration parses an xs:duration as WS-Management uses it for
// OperationTimeout ("PT60S", "PT60.000S", "PT1M30S", "P0DT0H0M20S").
func parseDuration(s string, def time.Duration) time.Duration {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "P") {
		return def
	}
	var d time.Duration
	inTime := false
	num := ""
	for _, r := range s[1:] {
		switch {
		case r == 'T':
			inTime = true
		case (r >= '0' && r <= '9') || r == '.':
			num += string(r)
		default:
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return def
			}
			num = ""
			var unit time.Duration
			switch {
			case r == 'D' && !inTime:
				unit = 24 * time.Hour
			case r == 'H' && inTime:
				unit = time.Hour
			case r == 'M' && inTime:
				unit = time.Minute
			case r == 'S' && inTime:
				unit = time.Second
			default:
				return def
			}
			d += time.Duration(f * float64(unit))
		}
	}
	if num != "" || d <= 0 {
		return def
	}
	return d
}

// commandLineTooLong reports whether cmd.exe would refuse line: its limit
// is 8191 characters (UTF-16 code units) (winrm.md §0.5).
func commandLineTooLong(line string) bool {
	return len(line) > MaxCommandLine && len(utf16.Encode([]rune(line))) > MaxCommandLine
}
