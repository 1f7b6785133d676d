package remediate

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/relaylock/relaylock/remediate/psframe"
	"github.com/relaylock/relaylock/templates"
)

// fakeWSMan is a minimal WS-Management (WinRS) server for the runner's
// tests: Basic auth, Create/Command/Send/Receive/Signal/Delete as in
// docs/winrm.md §2.3-2.5, long-polling Receive with the OperationTimeout fault,
// and hooks to inject faults. The lab (internal/lab) has the full one.
type fakeWSMan struct {
	user, pass string
	// script answers one run: the decoded script name and params.
	script func(name string, params map[string]string) (recs []psframe.Record, code int, stderr string)
	poll   time.Duration // Receive long-poll before the TimedOut fault

	mu           sync.Mutex
	cmds         map[string]*fakeCmd
	actions      []string
	stdinSeen    [][]byte
	createFault  bool
	noShellID    bool
	commandFault string // fault subcode on Command
	stall        bool   // never finish commands
	rawStdout    []byte // if set, replaces the framed stdout
	certAuth     bool   // require a TLS client certificate + the mutual-auth header instead of Basic
	sendFault    bool   // answer every Send with a fault
	next         int
}

type fakeCmd struct {
	cmdline string
	stdin   bytes.Buffer
	done    chan struct{}
	stdout  []byte
	stderr  []byte
	code    int
	sent    bool
}

func newFake() *fakeWSMan {
	return &fakeWSMan{user: "admin", pass: "s3cret-pw", poll: 300 * time.Millisecond, cmds: map[string]*fakeCmd{}}
}

type wsEnv struct {
	Header struct {
		Action    string `xml:"Action"`
		MessageID string `xml:"MessageID"`
		Selectors []struct {
			Name  string `xml:"Name,attr"`
			Value string `xml:",chardata"`
		} `xml:"SelectorSet>Selector"`
	} `xml:"Header"`
	Body struct {
		Command string `xml:"CommandLine>Command"`
		Send    []struct {
			Name      string `xml:"Name,attr"`
			CommandID string `xml:"CommandId,attr"`
			End       string `xml:"End,attr"`
			Data      string `xml:",chardata"`
		} `xml:"Send>Stream"`
		Receive struct {
			CommandID string `xml:"CommandId,attr"`
		} `xml:"Receive>DesiredStream"`
	} `xml:"Body"`
}

const (
	nsHeader = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header><a:Action>%s</a:Action><a:MessageID>uuid:%d</a:MessageID><a:RelatesTo>%s</a:RelatesTo></s:Header><s:Body>%s</s:Body></s:Envelope>`
	shellNS  = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
)

func (f *fakeWSMan) reply(w http.ResponseWriter, status int, action, relates, body string) {
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	w.WriteHeader(status)
	f.mu.Lock()
	f.next++
	n := f.next
	f.mu.Unlock()
	fmt.Fprintf(w, nsHeader, action, n, relates, body)
}

func (f *fakeWSMan) fault(w http.ResponseWriter, relates, subcode, code, text string) {
	body := `<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>` + subcode + `</s:Value></s:Subcode></s:Code>` +
		`<s:Reason><s:Text xml:lang="en-US">` + text + `</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="` + code + `" Machine="fake"><f:Message>` + text + `</f:Message></f:WSManFault></s:Detail></s:Fault>`
	f.reply(w, http.StatusInternalServerError, "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates, body)
}

func (f *fakeWSMan) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.certAuth {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 ||
			r.Header.Get("Authorization") != "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	} else if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.pass {
		w.Header().Set("WWW-Authenticate", `Basic realm="WSMAN"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var env wsEnv
	if err := xml.NewDecoder(r.Body).Decode(&env); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	action := env.Header.Action
	id := env.Header.MessageID
	f.mu.Lock()
	f.actions = append(f.actions, action[strings.LastIndex(action, "/")+1:])
	f.mu.Unlock()
	switch {
	case strings.HasSuffix(action, "/transfer/Create"):
		if f.createFault {
			f.fault(w, id, "w:InternalError", "1726", "The WinRM service cannot process the request: the maximum number of concurrent shells for this user has been exceeded.")
			return
		}
		sel := `<w:SelectorSet><w:Selector Name="ShellId">SHELL-1</w:Selector></w:SelectorSet>`
		if f.noShellID {
			sel = ""
		}
		f.reply(w, 200, "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse", id,
			`<x:ResourceCreated><a:Address>http://fake/wsman</a:Address><a:ReferenceParameters><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>`+sel+`</a:ReferenceParameters></x:ResourceCreated>`)
	case strings.HasSuffix(action, "/shell/Command"):
		if f.commandFault != "" {
			f.fault(w, id, f.commandFault, "5", "Access is denied.")
			return
		}
		f.mu.Lock()
		f.next++
		cid := "CMD-" + strconv.Itoa(f.next)
		f.cmds[cid] = &fakeCmd{cmdline: env.Body.Command, done: make(chan struct{})}
		f.mu.Unlock()
		f.reply(w, 200, shellNS+"/CommandResponse", id, `<rsp:CommandResponse><rsp:CommandId>`+cid+`</rsp:CommandId></rsp:CommandResponse>`)
	case strings.HasSuffix(action, "/shell/Send"):
		if f.sendFault {
			f.fault(w, id, "w:InternalError", "1460", "This operation returned because the timeout period expired.")
			return
		}
		for _, s := range env.Body.Send {
			f.mu.Lock()
			c := f.cmds[s.CommandID]
			f.mu.Unlock()
			if c == nil {
				f.fault(w, id, "w:InvalidParameter", "87", "unknown command")
				return
			}
			b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(s.Data))
			c.stdin.Write(b)
			if s.End == "true" {
				f.finish(c)
			}
		}
		f.reply(w, 200, shellNS+"/SendResponse", id, `<rsp:SendResponse/>`)
	case strings.HasSuffix(action, "/shell/Receive"):
		f.mu.Lock()
		c := f.cmds[env.Body.Receive.CommandID]
		f.mu.Unlock()
		if c == nil {
			f.fault(w, id, "w:InvalidParameter", "87", "unknown command")
			return
		}
		select {
		case <-c.done:
		case <-time.After(f.poll):
			f.fault(w, id, "w:TimedOut", "2150858793", "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.")
			return
		case <-r.Context().Done():
			return
		}
		f.mu.Lock()
		out, errOut := c.stdout, c.stderr
		if c.sent {
			out, errOut = nil, nil
		}
		c.sent = true
		f.mu.Unlock()
		body := `<rsp:ReceiveResponse>`
		if len(out) > 0 {
			body += `<rsp:Stream Name="stdout" CommandId="X">` + base64.StdEncoding.EncodeToString(out) + `</rsp:Stream>`
		}
		if len(errOut) > 0 {
			body += `<rsp:Stream Name="stderr" CommandId="X">` + base64.StdEncoding.EncodeToString(errOut) + `</rsp:Stream>`
		}
		body += `<rsp:CommandState CommandId="X" State="` + shellNS + `/CommandState/Done"><rsp:ExitCode>` + strconv.Itoa(c.code) + `</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>`
		f.reply(w, 200, shellNS+"/ReceiveResponse", id, body)
	case strings.HasSuffix(action, "/shell/Signal"):
		f.reply(w, 200, shellNS+"/SignalResponse", id, `<rsp:SignalResponse/>`)
	case strings.HasSuffix(action, "/transfer/Delete"):
		f.reply(w, 200, "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse", id, ``)
	default:
		f.fault(w, id, "w:ActionNotSupported", "1", "unknown action "+action)
	}
}

// finish runs the "script" once stdin is complete.
func (f *fakeWSMan) finish(c *fakeCmd) {
	f.mu.Lock()
	f.stdinSeen = append(f.stdinSeen, append([]byte(nil), c.stdin.Bytes()...))
	stall, raw := f.stall, f.rawStdout
	f.mu.Unlock()
	if stall {
		return
	}
	if c.cmdline != psframe.CommandLine() {
		c.stderr, c.code = []byte("'x' is not recognized as an internal or external command"), 1
		close(c.done)
		return
	}
	src, params, err := psframe.DecodePayload(c.stdin.Bytes())
	if err != nil {
		c.stderr, c.code = []byte(err.Error()), 1
		close(c.done)
		return
	}
	name := ""
	for _, n := range templates.ScriptNames() {
		if t, _ := templates.FullScript(n); t == src {
			name = n
		}
	}
	recs, code, stderr := f.script(name, params)
	c.stdout = psframe.EncodeOutput(params[psframe.NonceParam], recs, code)
	if raw != nil {
		c.stdout = raw
	}
	c.stderr, c.code = []byte(stderr), code
	close(c.done)
}

var sampleHost = HostInfo{
	ComputerName: "MAIL1", Domain: "corp.example", OSCaption: "Microsoft Windows Server 2019 Standard", OSVersion: "10.0.17763",
	PSVersion: "5.1.17763.1", Is64BitProcess: true, ExchangeVersion: "2019", ExchangeBuild: "15.2.1544.4",
	ExchangeRoles: []string{"Mailbox"},
	Services: []ServiceInfo{
		{Name: "SMTPSVC", Present: false},
		{Name: "MSExchangeTransport", Present: true, State: "Running", StartMode: "Auto"},
		{Name: "MSExchangeFrontEndTransport", Present: true, State: "Running", StartMode: "Auto"},
		{Name: "MSExchangeSA", Present: false},
	},
	Features: []FeatureInfo{{Name: "SMTP-Server", Installed: false}, {Name: "Web-WMI", Installed: false}},
	Platform: PlatformExchange,
}

// serve starts f (TLS when tlsOn) and returns a config for it.
func serve(t *testing.T, f *fakeWSMan, tlsOn bool) WinRMConfig {
	t.Helper()
	return serveWith(t, f, tlsOn, nil)
}

// serveWith is serve with the server's TLS configuration (nil: httptest's).
func serveWith(t *testing.T, f *fakeWSMan, tlsOn bool, tlsConf *tls.Config) WinRMConfig {
	t.Helper()
	if f.script == nil {
		f.script = func(name string, _ map[string]string) ([]psframe.Record, int, string) {
			if name == DetectScript {
				return EncodeHostInfo(sampleHost), 0, ""
			}
			return []psframe.Record{*psframe.NewRecord("error").Set("message", "unknown script "+name)}, 1, ""
		}
	}
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected in some tests
	srv.TLS = tlsConf
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	cfg := WinRMConfig{Host: host, Port: p, HTTPS: tlsOn, Auth: AuthBasic, User: f.user, Password: f.pass,
		OperationTimeout: time.Second, ConnectTimeout: 10 * time.Second}
	if tlsOn {
		ca := filepath.Join(t.TempDir(), "ca.pem")
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.CACertFile = ca
	} else {
		cfg.AllowUnencrypted = true
	}
	return cfg
}

func newRunner(t *testing.T, cfg WinRMConfig) (*WinRMRunner, []string) {
	t.Helper()
	r, warns, err := NewWinRMRunner(cfg)
	if err != nil {
		t.Fatalf("NewWinRMRunner: %v", err)
	}
	return r, warns
}

func TestRunnerDetectOverHTTPS(t *testing.T) {
	f := newFake()
	cfg := serve(t, f, true)
	r, warns := newRunner(t, cfg)
	if len(warns) != 0 {
		t.Errorf("unexpected warnings: %q", warns)
	}
	info, run, err := Detect(context.Background(), r)
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	if got, _ := json.Marshal(info); !bytes.Equal(got, mustJSON(t, sampleHost)) {
		t.Errorf("HostInfo:\n got %s\nwant %s", got, mustJSON(t, sampleHost))
	}
	full, _ := templates.FullScript(DetectScript)
	if run.Script != DetectScript || run.SHA256 != sha256hex(full) || run.ExitCode != 0 || run.Output == nil {
		t.Errorf("ScriptRun = %+v", run)
	}
	if run.Params != nil {
		t.Errorf("Params = %v, want none (the nonce is not a caller parameter)", run.Params)
	}
	if run.Start.IsZero() || run.End.Before(run.Start) || run.Start.Location() != time.UTC {
		t.Errorf("times %v .. %v", run.Start, run.End)
	}
	if !strings.Contains(run.Stdout, "BEGIN ") {
		t.Errorf("stdout not recorded: %q", run.Stdout)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// One shell per run: Create, Command, Send(s), Receive(s), Signal, Delete.
	acts := strings.Join(f.actions, ",")
	if !strings.HasPrefix(acts, "Create,Command") || !strings.HasSuffix(acts, "Delete") || !strings.Contains(acts, "Signal") {
		t.Errorf("actions %s", acts)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRunnerRepollsIdleReceive(t *testing.T) {
	f := newFake()
	f.poll = 50 * time.Millisecond
	inner := func(name string, p map[string]string) ([]psframe.Record, int, string) {
		time.Sleep(300 * time.Millisecond) // several TimedOut faults first
		return EncodeHostInfo(sampleHost), 0, ""
	}
	f.script = inner
	cfg := serve(t, f, false)
	r, warns := newRunner(t, cfg)
	if len(warns) == 0 {
		t.Error("basic over plain HTTP gave no warning")
	}
	if _, _, err := Detect(context.Background(), r); err != nil {
		t.Fatalf("Detect: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := strings.Count(strings.Join(f.actions, ","), "Receive")
	if n < 2 {
		t.Errorf("Receive sent %d times, want a re-poll after the TimedOut fault", n)
	}
}

func TestRunnerErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakeWSMan, cfg *WinRMConfig)
		want  error
		text  string
	}{
		{"wrong password", func(f *fakeWSMan, c *WinRMConfig) { c.Password = "nope" }, ErrAuth, "authentication failed for admin at 127.0.0.1"},
		{"unknown CA", func(f *fakeWSMan, c *WinRMConfig) { c.CACertFile = "" }, ErrTLS, "certificate"},
		{"wrong server name", func(f *fakeWSMan, c *WinRMConfig) { c.TLSServerName = "mail.wrong.example" }, ErrTLS, "mail.wrong.example"},
		{"http to https port", func(f *fakeWSMan, c *WinRMConfig) {
			c.HTTPS, c.CACertFile, c.AllowUnencrypted = false, "", true
		}, ErrUnreachable, "connection closed"},
		{"create fault", func(f *fakeWSMan, c *WinRMConfig) { f.createFault = true }, ErrWinRM, "maximum number of concurrent shells"},
		{"create without ShellId", func(f *fakeWSMan, c *WinRMConfig) { f.noShellID = true }, ErrWinRM, "names no ShellId"},
		{"command access denied", func(f *fakeWSMan, c *WinRMConfig) { f.commandFault = "w:AccessDenied" }, ErrAccessDenied, "not allowed"},
		{"no frame", func(f *fakeWSMan, c *WinRMConfig) { f.rawStdout = []byte("hello\r\n") }, psframe.ErrFrame, "no BEGIN"},
		// Classification is by HRESULT, exception type and
		// FullyQualifiedErrorId, never by the (translated) message.
		{"iis wmi missing", func(f *fakeWSMan, c *WinRMConfig) {
			f.script = func(string, map[string]string) ([]psframe.Record, int, string) {
				return []psframe.Record{*psframe.NewRecord("error").Set("message", `Invalid namespace `).
					Set("type", "System.Management.ManagementException").Set("hresult", "0x8004100E").
					Set("kind", errorKindFeatureMissing).Set("feature", "Web-WMI")}, 3, ""
			}
		}, ErrFeatureMissing, "Web-WMI (IIS 6 WMI Compatibility) is not installed"},
		{"iis wmi missing, German", func(f *fakeWSMan, c *WinRMConfig) {
			f.script = func(string, map[string]string) ([]psframe.Record, int, string) {
				return []psframe.Record{*psframe.NewRecord("error").Set("message", "Ungültiger Namespace ").
					Set("type", "System.Management.ManagementException").Set("hresult", "0x8004100e")}, 1, ""
			}
		}, ErrFeatureMissing, "Ungültiger Namespace [HRESULT 0x8004100E, System.Management.ManagementException]"},
		{"access denied in script", func(f *fakeWSMan, c *WinRMConfig) {
			f.script = func(string, map[string]string) ([]psframe.Record, int, string) {
				return []psframe.Record{*psframe.NewRecord("error").Set("message", "Access is denied. (Exception from HRESULT: 0x80070005)").
					Set("type", "System.Management.Automation.MethodInvocationException").Set("inner", "System.UnauthorizedAccessException").Set("hresult", "0x80070005")}, 1, ""
			}
		}, ErrAccessDenied, "access denied"},
		{"access denied in script, German", func(f *fakeWSMan, c *WinRMConfig) {
			f.script = func(string, map[string]string) ([]psframe.Record, int, string) {
				return []psframe.Record{*psframe.NewRecord("error").Set("message", "Zugriff verweigert").
					Set("type", "System.UnauthorizedAccessException")}, 1, ""
			}
		}, ErrAccessDenied, "Zugriff verweigert"},
		{"LDAP insufficient rights", func(f *fakeWSMan, c *WinRMConfig) {
			f.script = func(string, map[string]string) ([]psframe.Record, int, string) {
				return []psframe.Record{*psframe.NewRecord("error").Set("message", "Die Zugriffsrechte reichen nicht aus, um den Vorgang auszuführen.").
					Set("type", "System.DirectoryServices.DirectoryServicesCOMException").Set("hresult", "0x80072098")}, 1, ""
			}
		}, ErrAccessDenied, "HRESULT 0x80072098"},
		{"English text alone classifies nothing", func(f *fakeWSMan, c *WinRMConfig) {
			f.script = func(string, map[string]string) ([]psframe.Record, int, string) {
				return []psframe.Record{*psframe.NewRecord("error").Set("message", `Access is denied. Invalid namespace "root\MicrosoftIISv2"`)}, 1, ""
			}
		}, ErrScript, "Access is denied"},
		{"snap-in missing", func(f *fakeWSMan, c *WinRMConfig) {
			f.script = func(string, map[string]string) ([]psframe.Record, int, string) {
				return []psframe.Record{*psframe.NewRecord("error").Set("message", "Das Windows PowerShell-Snap-In ist nicht installiert.").
					Set("type", "System.Management.Automation.PSArgumentException").Set("fqid", "AddPSSnapInRead,Microsoft.PowerShell.Commands.AddPSSnapinCommand")}, 1, ""
			}
		}, ErrFeatureMissing, "Exchange management tools"},
		{"script error from clixml", func(f *fakeWSMan, c *WinRMConfig) {
			f.script = func(string, map[string]string) ([]psframe.Record, int, string) {
				return nil, 2, "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><S S=\"Error\">Get-Thing : it broke_x000D__x000A_</S></Objs>"
			}
		}, ErrScript, "exit code 2): Get-Thing : it broke"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			cfg := serve(t, f, true)
			tt.setup(f, &cfg)
			r, _ := newRunner(t, cfg)
			run, err := r.Run(context.Background(), DetectScript, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %q, want it to contain %q", err, tt.text)
			}
			if strings.Contains(err.Error(), f.pass) {
				t.Errorf("error text contains the password: %q", err)
			}
			_ = run
		})
	}
}

func TestRunnerUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close() // nothing listens here now
	r, _ := newRunner(t, WinRMConfig{Host: "127.0.0.1", Port: addr.Port, HTTPS: true, User: "u", Password: "p", ConnectTimeout: time.Second})
	_, err = r.Run(context.Background(), DetectScript, nil)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if want := "cannot reach 127.0.0.1:" + strconv.Itoa(addr.Port); !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestRunnerInsecureWarns(t *testing.T) {
	f := newFake()
	cfg := serve(t, f, true)
	cfg.CACertFile, cfg.Insecure = "", true
	r, warns := newRunner(t, cfg)
	if len(warns) != 1 || !strings.Contains(warns[0], "certificate verification") {
		t.Errorf("warnings = %q", warns)
	}
	if _, _, err := Detect(context.Background(), r); err != nil {
		t.Fatalf("Detect with Insecure: %v", err)
	}
}

func TestRunnerCancelNeverHangs(t *testing.T) {
	f := newFake()
	f.stall = true
	cfg := serve(t, f, true)
	cfg.OperationTimeout = 20 * time.Second // the long-poll would outlast the test
	f.poll = 20 * time.Second
	r, _ := newRunner(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Run(ctx, DetectScript, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	// Cleanup (Signal, Delete) gets at most a few seconds of its own.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run returned %v after the deadline", d)
	}
}

func TestRunnerOutputCap(t *testing.T) {
	f := newFake()
	cfg := serve(t, f, true)
	r, _ := newRunner(t, cfg)
	r.MaxOutput = 64
	_, err := r.Run(context.Background(), DetectScript, nil)
	if !errors.Is(err, psframe.ErrFrame) || !strings.Contains(err.Error(), "cut at 64 bytes") {
		t.Fatalf("err = %v, want a cut frame", err)
	}
}

func TestRunnerParamsAreDataAndSecretsStayOut(t *testing.T) {
	f := newFake()
	var got map[string]string
	f.script = func(name string, p map[string]string) ([]psframe.Record, int, string) {
		got = p
		return EncodeHostInfo(sampleHost), 0, ""
	}
	cfg := serve(t, f, true)
	r, _ := newRunner(t, cfg)
	evil := `'; Remove-Item C:\ -Recurse; '` + "\r\nS abc"
	run, err := r.Run(context.Background(), DetectScript, map[string]string{"Allow": evil})
	if err != nil {
		t.Fatal(err)
	}
	if got["Allow"] != evil || len(got[psframe.NonceParam]) != 32 {
		t.Errorf("params on the host = %q", got)
	}
	if run.Params["Allow"] != evil || run.Params[psframe.NonceParam] != "" {
		t.Errorf("recorded params = %q", run.Params)
	}
	b, _ := json.Marshal(run)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, blob := range append([][]byte{b}, f.stdinSeen...) {
		if bytes.Contains(blob, []byte(f.pass)) {
			t.Errorf("password found in %q", blob)
		}
	}
	if _, err := r.Run(context.Background(), DetectScript, map[string]string{"bad name": "x"}); err == nil {
		t.Error("a parameter name with a space was accepted")
	}
	if _, err := r.Run(context.Background(), DetectScript, map[string]string{"_nonce": "x"}); err == nil {
		t.Error("the reserved _nonce parameter was accepted")
	}
}

func TestRunnerConcurrentRuns(t *testing.T) {
	f := newFake()
	cfg := serve(t, f, true)
	r, _ := newRunner(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := Detect(context.Background(), r)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestNTLMRefusesBasicFallback(t *testing.T) {
	// The fake only offers Basic. go-ntlmssp's Negotiator would answer with
	// the Basic header (the password in clear text); the runner refuses.
	f := newFake()
	cfg := serve(t, f, true)
	cfg.Auth = AuthNTLM
	r, _ := newRunner(t, cfg)
	_, err := r.Run(context.Background(), DetectScript, nil)
	if err == nil || !strings.Contains(err.Error(), "refusing to fall back to Basic") {
		t.Fatalf("err = %v, want the Basic fallback refused", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.actions) != 0 {
		t.Errorf("the fake accepted requests %v", f.actions)
	}
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestRunnerLegacyTLS(t *testing.T) {
	// A Windows Server 2008-era listener: TLS 1.0 with RSA key exchange only.
	old := &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10,
		CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}}
	f := newFake()
	cfg := serveWith(t, f, true, old)
	r, _ := newRunner(t, cfg)
	if _, err := r.Run(context.Background(), DetectScript, nil); !errors.Is(err, ErrTLS) {
		t.Fatalf("TLS 1.0 accepted by default: %v", err)
	}
	cfg.LegacyTLS = true
	r, warns := newRunner(t, cfg)
	if len(warns) != 1 || !strings.Contains(warns[0], "legacy TLS") {
		t.Errorf("warnings = %q", warns)
	}
	if _, _, err := Detect(context.Background(), r); err != nil {
		t.Fatalf("Detect with LegacyTLS: %v", err)
	}
}

func TestRunnerCertificateAuth(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relaylock"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)

	f := newFake()
	f.certAuth = true
	cfg := serveWith(t, f, true, &tls.Config{ClientAuth: tls.RequireAnyClientCert})
	cfg.Auth, cfg.User, cfg.Password = AuthCertificate, "", ""
	cfg.ClientCertFile, cfg.ClientKeyFile = certFile, keyFile
	r, _ := newRunner(t, cfg)
	if _, _, err := Detect(context.Background(), r); err != nil {
		t.Fatalf("Detect with a client certificate: %v", err)
	}
	cfg.ClientKeyFile = certFile // not a key
	if _, _, err := NewWinRMRunner(cfg); !errors.Is(err, ErrConfig) {
		t.Errorf("bad key file: %v", err)
	}
}

func TestRunnerLargePayloadIsChunked(t *testing.T) {
	f := newFake()
	var got string
	f.script = func(name string, p map[string]string) ([]psframe.Record, int, string) {
		got = p["Blob"]
		return EncodeHostInfo(sampleHost), 0, ""
	}
	cfg := serve(t, f, true)
	r, _ := newRunner(t, cfg)
	blob := strings.Repeat("0123456789abcdef", 300<<10/16) // 300 KiB, base64 in the payload: 400 KiB
	if _, err := r.Run(context.Background(), DetectScript, map[string]string{"Blob": blob}); err != nil {
		t.Fatal(err)
	}
	if got != blob {
		t.Errorf("the host got %d bytes, want %d", len(got), len(blob))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := strings.Count(strings.Join(f.actions, ","), "Send"); n < 5 {
		t.Errorf("%d Sends, want the payload split into chunks under the envelope size", n)
	}
}

// BenchmarkRunnerDetect measures one script run (Create, Command, Send,
// Receive, Signal, Delete) over HTTPS with Basic auth on loopback, with
// the connection pool reused across runs.
func BenchmarkRunnerDetect(b *testing.B) {
	f := newFake()
	f.script = func(string, map[string]string) ([]psframe.Record, int, string) {
		return EncodeHostInfo(sampleHost), 0, ""
	}
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	r, _, err := NewWinRMRunner(WinRMConfig{Host: host, Port: p, HTTPS: true, Insecure: true, Auth: AuthBasic, User: f.user, Password: f.pass})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Run(context.Background(), DetectScript, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCLIXMLMessages(b *testing.B) {
	for b.Loop() {
		CLIXMLMessages(clixmlSample)
	}
}

// TestMasterzenBugsStillPresent documents, against the fake server, the
// library behaviours the runner's own transport works around
// (docs/winrm.md §0) in the pinned version. It fails when a library upgrade
// changes them, so that the workaround is reconsidered with it.
func TestMasterzenBugsStillPresent(t *testing.T) {
	newLib := func(t *testing.T, f *fakeWSMan, ntlm bool) *winrm.Client {
		t.Helper()
		cfg := serve(t, f, true)
		params := *winrm.DefaultParameters
		if ntlm {
			params.TransportDecorator = func() winrm.Transporter { return &winrm.ClientNTLM{} }
		}
		c, err := winrm.NewClientWithParameters(winrm.NewEndpoint(cfg.Host, cfg.Port, true, true, nil, nil, nil, 0), f.user, f.pass, &params)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("fault on Create is success with an empty ShellId", func(t *testing.T) {
		f := newFake()
		f.createFault = true
		if _, err := newLib(t, f, false).CreateShell(); err != nil {
			t.Fatalf("fixed in this masterzen/winrm version (reconsider checkAnswer/readResponse): %v", err)
		}
	})
	t.Run("ClientNTLM falls back to Basic", func(t *testing.T) {
		f := newFake() // offers Basic only
		if _, err := newLib(t, f, true).CreateShell(); err != nil {
			t.Fatalf("go-ntlmssp no longer falls back to Basic (reconsider noBasic): %v", err)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.actions) == 0 {
			t.Error("expected the Basic fallback to reach the server")
		}
	})
}

// masterzen ignores a failed stdin Send; the host then waits for input
// forever. The runner must end the run with the Send's error at once.
func TestRunnerFailedSendEndsRun(t *testing.T) {
	f := newFake()
	f.sendFault = true
	f.poll = 5 * time.Second
	cfg := serve(t, f, true)
	cfg.OperationTimeout = 5 * time.Second
	r, _ := newRunner(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := r.Run(ctx, DetectScript, nil)
	if !errors.Is(err, ErrWinRM) || !strings.Contains(err.Error(), "timeout period expired") {
		t.Fatalf("err = %v, want the Send fault", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the run waited for the caller's deadline")
	}
}
