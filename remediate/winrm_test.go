package remediate

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

func TestWinRMConfigDefaults(t *testing.T) {
	c := WinRMConfig{Host: " [::1] ", HTTPS: true}.WithDefaults()
	if c.Host != "::1" || c.Port != 5986 || c.Auth != AuthNTLM || c.OperationTimeout != 30*time.Second || c.ConnectTimeout != 15*time.Second {
		t.Errorf("defaults = %+v", c)
	}
	if got := c.url(); got != "https://[::1]:5986/wsman" {
		t.Errorf("url = %s", got)
	}
	if c := (WinRMConfig{Host: "h"}).WithDefaults(); c.Port != 5985 {
		t.Errorf("HTTP default port = %d", c.Port)
	}
	if c := (WinRMConfig{Host: "h", Auth: "kerberos"}).WithDefaults(); c.SPN != "HTTP/h" || c.KrbConfig == "" {
		t.Errorf("kerberos defaults = %+v", c)
	}
}

func TestWinRMConfigValidate(t *testing.T) {
	ok := WinRMConfig{Host: "mail.example", HTTPS: true, User: "CORP\\admin", Password: "Zq9-secret"}
	tests := []struct {
		name     string
		mod      func(c *WinRMConfig)
		wantErr  string // substring; "" = valid
		wantWarn string
	}{
		{"https ntlm", func(c *WinRMConfig) {}, "", ""},
		{"no host", func(c *WinRMConfig) { c.Host = "" }, "no WinRM host", ""},
		{"host with path", func(c *WinRMConfig) { c.Host = "mail/x" }, "not a host name", ""},
		{"bad auth", func(c *WinRMConfig) { c.Auth = "credssp" }, "unknown WinRM authentication", ""},
		{"no user", func(c *WinRMConfig) { c.User = "" }, "no WinRM user", ""},
		{"no password", func(c *WinRMConfig) { c.Password = "" }, "no WinRM password for CORP\\admin", ""},
		{"insecure warns", func(c *WinRMConfig) { c.Insecure = true }, "", "certificate verification for mail.example:5986 is disabled"},
		{"insecure and ca", func(c *WinRMConfig) { c.Insecure, c.CACertFile = true, "ca.pem" }, "contradict", ""},
		{"basic over http refused", func(c *WinRMConfig) { c.HTTPS, c.Auth = false, AuthBasic }, "clear text", ""},
		{"basic over http allowed", func(c *WinRMConfig) { c.HTTPS, c.Auth, c.AllowUnencrypted = false, AuthBasic, true }, "", "clear text"},
		{"ntlm over http encrypted", func(c *WinRMConfig) { c.HTTPS = false }, "", ""},
		{"ntlm over http unencrypted", func(c *WinRMConfig) { c.HTTPS, c.AllowUnencrypted = false, true }, "", "without message encryption"},
		{"kerberos over http refused", func(c *WinRMConfig) { c.HTTPS, c.Auth, c.User = false, AuthKerberos, "a@CORP.EXAMPLE" }, "kerberos over plain HTTP", ""},
		{"kerberos needs realm", func(c *WinRMConfig) { c.Auth = AuthKerberos }, "realm", ""},
		{"kerberos ccache", func(c *WinRMConfig) { c.Auth, c.User, c.Password, c.KrbCCache = AuthKerberos, "", "", "/tmp/krb5cc" }, "", ""},
		{"certificate over http", func(c *WinRMConfig) { c.HTTPS, c.Auth = false, AuthCertificate }, "needs HTTPS", ""},
		{"certificate needs files", func(c *WinRMConfig) { c.Auth = AuthCertificate }, "--winrm-cert", ""},
		{"tls options on http", func(c *WinRMConfig) { c.HTTPS, c.TLSServerName = false, "x" }, "need HTTPS", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			warns, err := c.WithDefaults().Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
			} else {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrConfig containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "Zq9-secret") {
					t.Errorf("error shows the password: %v", err)
				}
			}
			joined := strings.Join(warns, "\n")
			if (tt.wantWarn == "") != (joined == "") || !strings.Contains(joined, tt.wantWarn) {
				t.Errorf("warnings = %q, want %q", warns, tt.wantWarn)
			}
		})
	}
}

func TestParseFault(t *testing.T) {
	body := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault>` +
		`<s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>w:AccessDenied</s:Value></s:Subcode></s:Code>` +
		`<s:Reason><s:Text xml:lang="en-US">Access is denied. </s:Text></s:Reason>` +
		`<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="5" Machine="m"><f:Message>Access is denied.</f:Message></f:WSManFault></s:Detail>` +
		`</s:Fault></s:Body></s:Envelope>`
	f := parseFault([]byte(body))
	if f == nil {
		t.Fatal("no fault parsed")
	}
	if f.Subcode != "w:AccessDenied" || f.WSManCode != "5" || f.Reason != "Access is denied." {
		t.Errorf("fault = %+v", f)
	}
	if !errors.Is(f, ErrAccessDenied) || !errors.Is(f, ErrWinRM) || f.timedOut() {
		t.Errorf("fault kinds wrong: %v", f)
	}
	if parseFault([]byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>`)) != nil {
		t.Error("non-fault parsed as fault")
	}
}

func TestReadResponse(t *testing.T) {
	cfg := WinRMConfig{Host: "h", Port: 5986, HTTPS: true, User: "u", Auth: AuthNTLM}
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		want   error
	}{
		// masterzen's Post turns these into "http response error: 401 - invalid content type".
		{"401 plain", 401, "", "", ErrAuth},
		{"401 soap", 401, "application/soap+xml", "", ErrAuth},
		// masterzen returns a non-200 SOAP answer as success (defer bug).
		{"500 fault", 500, "application/soap+xml;charset=UTF-8", `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Reason><s:Text>boom</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>`, ErrWinRM},
		{"500 html", 500, "text/html", "<html>oops</html>", ErrWinRM},
		{"200 html", 200, "text/html", "<html>proxy login</html>", ErrWinRM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}, Body: readCloser(tt.body)}
			if tt.ctype != "" {
				resp.Header.Set("Content-Type", tt.ctype)
			}
			resp.Header.Set("WWW-Authenticate", "Negotiate")
			_, err := readResponse(cfg, resp)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

type stringBody struct{ *strings.Reader }

func (stringBody) Close() error { return nil }

func readCloser(s string) stringBody { return stringBody{strings.NewReader(s)} }

func TestCheckAnswer(t *testing.T) {
	if err := checkAnswer("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", `<e><w:Selector xmlns:w="x" Name="ShellId"> </w:Selector></e>`); err == nil {
		t.Error("empty ShellId accepted")
	}
	if err := checkAnswer("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", `<e><w:Selector xmlns:w="x" Name="ShellId">ABC</w:Selector></e>`); err != nil {
		t.Error(err)
	}
	if err := checkAnswer("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command", `<e/>`); err == nil {
		t.Error("missing CommandId accepted")
	}
}

// libStub is a masterzen Transporter for libTransport tests.
type libStub struct {
	post func() (string, error)
}

func (l libStub) Transport(*winrm.Endpoint) error { return nil }
func (l libStub) Post(*winrm.Client, *soap.SoapMessage) (string, error) {
	return l.post()
}

func TestLibTransportGuards(t *testing.T) {
	cfg := WinRMConfig{Host: "h", Port: 5985, Auth: AuthNTLM, User: "u"}
	msg := winrm.NewOpenShellRequest("http://h:5985/wsman", winrm.DefaultParameters)
	defer msg.Free()
	wt := &winrmTransport{cfg: cfg, libTimeout: time.Minute}
	post := func(ctx context.Context, f func() (string, error)) error {
		lt := &libTransport{c: wt, ctx: ctx, inner: libStub{f}, rec: &postRecorder{}}
		_, err := lt.Post(nil, msg)
		return err
	}
	if err := post(context.Background(), func() (string, error) { panic("index out of range") }); !errors.Is(err, ErrWinRM) || !strings.Contains(err.Error(), "panic") {
		t.Errorf("panic: %v", err)
	}
	fault := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode></s:Code><s:Reason><s:Text>boom</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>`
	if err := post(context.Background(), func() (string, error) { return fault, nil }); !errors.Is(err, ErrWinRM) || !strings.Contains(err.Error(), "boom") {
		t.Errorf("fault returned as success: %v", err)
	}
	if err := post(context.Background(), func() (string, error) { return "", errors.New("http response error: 401 - invalid content type") }); !errors.Is(err, ErrAuth) {
		t.Errorf("401: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	block := make(chan struct{})
	defer close(block)
	if err := post(ctx, func() (string, error) { <-block; return "", nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung transport: %v", err)
	}
	// Without a context deadline the request timeout still ends it.
	wt2 := &winrmTransport{cfg: cfg, libTimeout: 50 * time.Millisecond}
	lt := &libTransport{c: wt2, ctx: context.Background(), inner: libStub{func() (string, error) { <-block; return "", nil }}, rec: &postRecorder{}}
	if _, err := lt.Post(nil, msg); !errors.Is(err, ErrUnreachable) {
		t.Errorf("request timeout: %v", err)
	}
}

// Kerberos cannot be tested end to end (no KDC here); this checks that a
// KDC that cannot be reached fails the run promptly with a clear error.
func TestKerberosUnreachableKDC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kdcPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(t.TempDir(), "krb5.conf")
	os.WriteFile(conf, []byte("[libdefaults]\n default_realm = CORP.EXAMPLE\n dns_lookup_kdc = false\n udp_preference_limit = 1\n[realms]\n CORP.EXAMPLE = {\n  kdc = 127.0.0.1:"+strconv.Itoa(kdcPort)+"\n }\n"), 0o600)
	f := newFake()
	cfg := serve(t, f, true)
	cfg.Auth, cfg.User, cfg.Password, cfg.KrbConfig = AuthKerberos, "admin@CORP.EXAMPLE", "pw", conf
	r, _ := newRunner(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = r.Run(ctx, DetectScript, nil)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "cannot reach a Kerberos KDC") || ctx.Err() != nil {
		t.Fatalf("err = %v (ctx %v), want a prompt ErrUnreachable naming the KDC", err, ctx.Err())
	}
}
