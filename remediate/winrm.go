package remediate

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"
	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"

	"github.com/relaylock/relaylock/internal/atomicfile"
)

// WinRMConfig says how to reach one host's WinRM service.
//
// Defaults (WithDefaults): HTTPS on 5986 with NTLM authentication and
// certificate verification; plain HTTP (5985) only with NTLM message
// encryption or an explicit AllowUnencrypted. Basic authentication over
// plain HTTP would send the password in clear text and is refused unless
// AllowUnencrypted is set. The password is only ever held here; it never
// reaches a script's parameters, a ScriptRun, or a log line.
type WinRMConfig struct {
	Host  string
	Port  int // default 5986 with HTTPS, 5985 without
	HTTPS bool
	// Insecure skips certificate verification (a warning is returned).
	Insecure bool
	// CACertFile is a PEM file of CA certificates to trust instead of the
	// system pool (a self-signed WinRM listener certificate, for example).
	CACertFile string
	// TLSServerName is the name to verify the certificate against when
	// Host is an address or a different name.
	TLSServerName string
	// Auth is "ntlm" (default), "basic", "kerberos" or "certificate".
	Auth           string
	User, Password string
	// Kerberos: krb5.conf path (default $KRB5_CONFIG or /etc/krb5.conf),
	// realm, credential cache (instead of a password) and SPN (default
	// HTTP/<host>).
	KrbConfig, KrbRealm, KrbCCache, SPN string
	// Certificate authentication (HTTPS only): PEM client certificate and key.
	ClientCertFile, ClientKeyFile string
	// HopUser and HopPassword are the credential the scripts pass
	// explicitly to Active Directory and the Exchange shell (the second
	// hop, hop.go). Empty HopUser: User and Password when the WinRM logon
	// uses a password (ntlm, basic, kerberos with a password); a Kerberos
	// ccache or a client certificate has none, so Exchange hosts then need
	// HopUser and HopPassword.
	HopUser, HopPassword string
	// AllowUnencrypted permits plain HTTP without message encryption (the
	// host must have AllowUnencrypted=true too; not recommended).
	AllowUnencrypted bool
	// LegacyTLS accepts TLS 1.0/1.1 and the RSA key exchange and 3DES
	// cipher suites that Windows Server 2003/2008 (and 2008 R2 with its
	// defaults) offer; Go refuses them by default. A warning is returned.
	LegacyTLS bool
	// OperationTimeout is the WS-Man OperationTimeout of each request
	// (the Receive long-poll); ConnectTimeout bounds TCP connect and TLS
	// handshake. Defaults 30 s and 15 s.
	OperationTimeout, ConnectTimeout time.Duration

	// Dial, when set, opens the TCP connections instead of a net.Dialer
	// (a seam: tests check that no host name reaches it).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Auth mechanisms.
const (
	AuthNTLM        = "ntlm"
	AuthBasic       = "basic"
	AuthKerberos    = "kerberos"
	AuthCertificate = "certificate"
)

// WithDefaults fills in the port, auth and timeouts.
func (c WinRMConfig) WithDefaults() WinRMConfig {
	c.Host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(c.Host), "["), "]")
	if c.Auth == "" {
		c.Auth = AuthNTLM
	}
	c.Auth = strings.ToLower(c.Auth)
	if c.Port == 0 {
		if c.HTTPS {
			c.Port = 5986
		} else {
			c.Port = 5985
		}
	}
	if c.OperationTimeout <= 0 {
		c.OperationTimeout = 30 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 15 * time.Second
	}
	if c.Auth == AuthKerberos {
		if c.KrbConfig == "" {
			c.KrbConfig = os.Getenv("KRB5_CONFIG")
		}
		if c.KrbConfig == "" {
			c.KrbConfig = "/etc/krb5.conf"
		}
		if c.SPN == "" {
			c.SPN = "HTTP/" + c.Host
		}
	}
	return c
}

// Hop returns the second-hop credential (see HopUser).
func (c WinRMConfig) Hop() HopCredential {
	if c.HopUser != "" {
		return HopCredential{User: c.HopUser, Password: c.HopPassword}
	}
	switch strings.ToLower(c.Auth) {
	case "", AuthNTLM, AuthBasic, AuthKerberos:
		if c.Password != "" {
			return HopCredential{User: c.User, Password: c.Password}
		}
	}
	return HopCredential{}
}

func (c WinRMConfig) hostPort() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

func (c WinRMConfig) url() string {
	scheme := "http"
	if c.HTTPS {
		scheme = "https"
	}
	return scheme + "://" + c.hostPort() + "/wsman"
}

// encrypted reports whether the messages are protected: TLS, or NTLM
// message encryption on plain HTTP.
func (c WinRMConfig) ntlmSealing() bool {
	return !c.HTTPS && c.Auth == AuthNTLM && !c.AllowUnencrypted
}

// encrypted reports whether every message is protected on the wire (TLS,
// or NTLM message encryption), so that a secret may travel in a payload.
func (c WinRMConfig) encrypted() bool { return c.HTTPS || c.ntlmSealing() }

// Validate checks a config (after WithDefaults) and returns the warnings
// the operator must see.
func (c WinRMConfig) Validate() (warnings []string, err error) {
	bad := func(format string, a ...any) ([]string, error) {
		return nil, kindErr(ErrConfig, nil, format, a...)
	}
	if c.Host == "" {
		return bad("no WinRM host given")
	}
	if strings.ContainsAny(c.Host, "/ \t\r\n@?#") {
		return bad("WinRM host %q is not a host name or address", c.Host)
	}
	if c.Port < 1 || c.Port > 65535 {
		return bad("WinRM port %d out of range", c.Port)
	}
	if (c.HopUser == "") != (c.HopPassword == "") {
		return bad("the second-hop account needs both a user and a password")
	}
	if strings.ContainsAny(c.HopUser, "\r\n") {
		return bad("second-hop user %q is not a user name", c.HopUser)
	}
	switch c.Auth {
	case AuthNTLM, AuthBasic, AuthKerberos, AuthCertificate:
	default:
		return bad("unknown WinRM authentication %q (want ntlm, basic, kerberos or certificate)", c.Auth)
	}
	if c.HTTPS {
		if c.Insecure && c.CACertFile != "" {
			return bad("--winrm-insecure and --winrm-ca contradict each other: pick one")
		}
		if c.Insecure {
			warnings = append(warnings, fmt.Sprintf("certificate verification for %s is disabled: anyone on the path can impersonate the host and read the session", c.hostPort()))
		}
		if c.AllowUnencrypted {
			warnings = append(warnings, "allowing unencrypted WinRM has no effect over HTTPS")
		}
		if c.LegacyTLS {
			warnings = append(warnings, fmt.Sprintf("legacy TLS for %s is enabled: TLS 1.0/1.1, RSA key exchange and 3DES are accepted", c.hostPort()))
		}
	} else {
		if c.Insecure || c.CACertFile != "" || c.TLSServerName != "" || c.LegacyTLS {
			return bad("TLS options (--winrm-insecure, --winrm-ca, --winrm-server-name, --winrm-legacy-tls) need HTTPS, but plain HTTP was chosen")
		}
		switch c.Auth {
		case AuthCertificate:
			return bad("certificate authentication needs HTTPS")
		case AuthBasic:
			if !c.AllowUnencrypted {
				return bad("basic authentication over plain HTTP would send the password of %s in clear text to %s: use HTTPS, or NTLM (encrypted on HTTP), or pass --winrm-allow-unencrypted if you accept that", c.User, c.hostPort())
			}
			warnings = append(warnings, fmt.Sprintf("basic authentication over plain HTTP to %s: the password and every command travel in clear text", c.hostPort()))
		case AuthKerberos:
			if !c.AllowUnencrypted {
				return bad("kerberos over plain HTTP is not encrypted by this client (no Kerberos message encryption): use HTTPS, or pass --winrm-allow-unencrypted")
			}
			warnings = append(warnings, fmt.Sprintf("kerberos over plain HTTP to %s: commands and output travel unencrypted", c.hostPort()))
		case AuthNTLM:
			if c.AllowUnencrypted {
				warnings = append(warnings, fmt.Sprintf("NTLM over plain HTTP to %s without message encryption: commands and output travel unencrypted", c.hostPort()))
			}
		}
	}
	switch c.Auth {
	case AuthNTLM, AuthBasic:
		if c.User == "" {
			return bad("no WinRM user given (--winrm-user or RELAYLOCK_WINRM_USER)")
		}
		if c.Password == "" {
			return bad("no WinRM password for %s (set RELAYLOCK_WINRM_PASSWORD, use --winrm-password-file, or run on a terminal to be prompted)", c.User)
		}
	case AuthKerberos:
		for _, f := range []string{c.KrbConfig, c.KrbCCache} { // read by the Kerberos library: a FIFO would block it
			if err := atomicfile.CheckRegular(f); errors.Is(err, atomicfile.ErrNotRegular) {
				return bad("%v", err)
			}
		}
		if c.KrbCCache == "" {
			if c.User == "" || c.Password == "" {
				return bad("kerberos needs a user and password, or a credential cache (--krb5-ccache)")
			}
			if _, realm, ok := strings.Cut(c.User, "@"); c.KrbRealm == "" && (!ok || realm == "") {
				return bad("kerberos needs a realm: give the user as user@REALM or --krb5-realm")
			}
		}
	case AuthCertificate:
		if c.ClientCertFile == "" || c.ClientKeyFile == "" {
			return bad("certificate authentication needs --winrm-cert and --winrm-key")
		}
	}
	return warnings, nil
}

// winrmTransport is a configured WinRM client: a shared HTTP transport (so
// TCP and TLS connections, and NTLM-authenticated connections, are reused across
// runs) and the library transporter for mechanisms this package does not
// drive itself.
type winrmTransport struct {
	cfg WinRMConfig
	rt  http.RoundTripper // nil when lib is used
	lib func() (winrm.Transporter, error)
	// seal is the pool of NTLM-sealed sessions (plain HTTP + NTLM).
	seal *sealPool
	// ntlm is the pool of single-connection transports for NTLM (rt nil).
	ntlm *rtPool
	// base is the shared HTTP transport (closed by close).
	base *http.Transport
	// libTimeout bounds one request of a library transporter.
	libTimeout time.Duration
	auth       func(*http.Request)
	// libEndpoint configures the library transporters.
	libEndpoint *winrm.Endpoint
}

// newWinRMTransport validates cfg and builds the transport. cfg must have had
// WithDefaults applied.
func newWinRMTransport(cfg WinRMConfig) (*winrmTransport, []string, error) {
	warnings, err := cfg.Validate()
	if err != nil {
		return nil, nil, err
	}
	tlsConf, caPEM, err := cfg.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	var certPEM, keyPEM []byte
	if cfg.Auth == AuthCertificate {
		if certPEM, err = atomicfile.ReadFile(cfg.ClientCertFile); err != nil {
			return nil, nil, kindErr(ErrConfig, err, "read client certificate")
		}
		if keyPEM, err = atomicfile.ReadFile(cfg.ClientKeyFile); err != nil {
			return nil, nil, kindErr(ErrConfig, err, "read client key")
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, nil, kindErr(ErrConfig, err, "load client certificate %s", cfg.ClientCertFile)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
		// WinRM may renegotiate to ask for the client certificate
		// (as masterzen's ClientAuthRequest allows).
		tlsConf.Renegotiation = tls.RenegotiateOnceAsClient
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	dial := dialer.DialContext
	if cfg.Dial != nil {
		dial = cfg.Dial
	}
	base := &http.Transport{
		// No proxy: WinRM goes straight to the host (NTLM does not
		// survive most proxies, and environment proxies are a surprise).
		Proxy:                 nil,
		DialContext:           dial,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.OperationTimeout + answerSlack,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     false,
	}
	c := &winrmTransport{cfg: cfg, base: base}
	user, pw := cfg.User, cfg.Password
	switch {
	case cfg.Auth == AuthBasic:
		c.rt = base
		c.auth = func(r *http.Request) { r.SetBasicAuth(user, pw) }
	case cfg.Auth == AuthNTLM && !cfg.ntlmSealing():
		// go-ntlmssp's Negotiator falls back to sending the Basic header
		// (the password in clear text) when the 401 offers neither
		// Negotiate nor NTLM: noBasic refuses that.
		//
		// NTLM authenticates a TCP connection with three requests that
		// must travel on that one connection. With a shared pool, the
		// library's concurrent Receive and Send interleave their legs
		// over two connections and the host rejects the mix (seen as a
		// sporadic 401). So each request checks out a connection of its
		// own: a transport limited to one connection, kept authenticated.
		c.ntlm = &rtPool{idle: make(chan *http.Transport, 4), newRT: func() *http.Transport {
			tr := base.Clone()
			tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost = 1, 1
			return tr
		}}
		c.rt = nil
		c.auth = func(r *http.Request) { r.SetBasicAuth(user, pw) }
	case cfg.Auth == AuthCertificate:
		c.rt = base
		// MS-WSMV 2.2.4.1 / WS-Man secprofile: the mutual-TLS profile header.
		c.auth = func(r *http.Request) {
			r.Header.Set("Authorization", "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual")
		}
	case cfg.Auth == AuthNTLM: // plain HTTP with NTLM message encryption (ntlmseal.go)
		c.seal = newSealPool(cfg, dial)
	case cfg.Auth == AuthKerberos:
		realm := cfg.KrbRealm
		kuser := cfg.User
		if u, r, ok := strings.Cut(cfg.User, "@"); ok {
			kuser = u
			if realm == "" {
				realm = strings.ToUpper(r)
			}
		}
		proto := "http"
		if cfg.HTTPS {
			proto = "https"
		}
		c.lib = func() (winrm.Transporter, error) {
			return winrm.NewClientKerberos(&winrm.Settings{
				WinRMUsername: kuser, WinRMPassword: pw, WinRMHost: cfg.Host, WinRMPort: cfg.Port,
				WinRMProto: proto, WinRMInsecure: cfg.Insecure, KrbRealm: realm, KrbConfig: cfg.KrbConfig,
				KrbSpn: cfg.SPN, KrbCCache: cfg.KrbCCache,
			}), nil
		}
	}
	if c.lib != nil {
		c.libTimeout = cfg.OperationTimeout + 30*time.Second
		c.libEndpoint = &winrm.Endpoint{Host: bracketHost(cfg.Host), Port: cfg.Port, HTTPS: cfg.HTTPS, Insecure: cfg.Insecure,
			TLSServerName: cfg.TLSServerName, CACert: caPEM, Timeout: cfg.OperationTimeout + 30*time.Second}
	}
	return c, warnings, nil
}

// tlsConfig is the TLS client configuration of cfg (server verification,
// legacy TLS) and the CA file's PEM; the client certificate is not set.
func (c WinRMConfig) tlsConfig() (*tls.Config, []byte, error) {
	tlsConf := &tls.Config{ServerName: c.TLSServerName, MinVersion: tls.VersionTLS12}
	if c.LegacyTLS {
		tlsConf.MinVersion = tls.VersionTLS10
		tlsConf.CipherSuites = legacyCipherSuites()
	}
	if c.Insecure {
		tlsConf.InsecureSkipVerify = true //nolint:gosec // operator asked for it, warned by Validate
	}
	var caPEM []byte
	if c.CACertFile != "" {
		var err error
		caPEM, err = atomicfile.ReadFile(c.CACertFile)
		if err != nil {
			return nil, nil, kindErr(ErrConfig, err, "read WinRM CA file")
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, nil, kindErr(ErrConfig, nil, "WinRM CA file %s holds no PEM certificate", c.CACertFile)
		}
		tlsConf.RootCAs = pool
	}
	return tlsConf, caPEM, nil
}

// TLSClientConfig is the TLS configuration relaylock connects to the
// host with (for checks such as `relaylock doctor`); cfg must have had
// WithDefaults applied.
func (c WinRMConfig) TLSClientConfig() (*tls.Config, error) {
	t, _, err := c.tlsConfig()
	return t, err
}

// URL is the WS-Management endpoint, e.g. https://host:5986/wsman.
func (c WinRMConfig) URL() string { return c.url() }

// legacyCipherSuites is Go's default list plus what old Windows servers
// offer: Schannel on Windows Server 2008/2008 R2 negotiates
// TLS_RSA_WITH_AES_*_CBC_SHA (RSA key exchange, off by default since Go
// 1.22), Windows Server 2003 only TLS_RSA_WITH_3DES_EDE_CBC_SHA and RC4
// (3DES off by default since Go 1.23; RC4 is not offered at all).
func legacyCipherSuites() []uint16 {
	var ids []uint16
	for _, cs := range tls.CipherSuites() {
		ids = append(ids, cs.ID)
	}
	for _, id := range []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA} {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func bracketHost(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// close drops every idle connection.
func (c *winrmTransport) close() {
	c.base.CloseIdleConnections()
	if c.ntlm != nil {
		for {
			select {
			case tr := <-c.ntlm.idle:
				tr.CloseIdleConnections()
				continue
			default:
			}
			break
		}
	}
	if c.seal != nil {
		for {
			select {
			case s := <-c.seal.idle:
				s.close()
				continue
			default:
			}
			break
		}
	}
}

// rtPool hands out single-connection transports, one request at a time.
type rtPool struct {
	idle  chan *http.Transport
	newRT func() *http.Transport
}

func (p *rtPool) get() *http.Transport {
	select {
	case tr := <-p.idle:
		return tr
	default:
		return p.newRT()
	}
}

func (p *rtPool) put(tr *http.Transport, ok bool) {
	if ok {
		select {
		case p.idle <- tr:
			return
		default:
		}
	}
	tr.CloseIdleConnections()
}

// roundTrip sends one request: through a checked-out NTLM connection, or
// the shared transport.
func (c *winrmTransport) roundTrip(req *http.Request) (*http.Response, error) {
	if c.ntlm == nil {
		return c.rt.RoundTrip(req)
	}
	tr := c.ntlm.get()
	resp, err := ntlmssp.Negotiator{RoundTripper: noBasic{tr}}.RoundTrip(req)
	if err != nil {
		c.ntlm.put(tr, false)
		return nil, err
	}
	// The connection is busy until the body is read: give it back then.
	resp.Body = &releaseBody{ReadCloser: resp.Body, release: func() { c.ntlm.put(tr, true) }}
	return resp, nil
}

// releaseBody calls release once, when the body is closed.
type releaseBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// noBasic refuses to send a Basic Authorization header (see newWinRMTransport).
type noBasic struct{ rt http.RoundTripper }

func (n noBasic) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "basic ") {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, errNTLMNotOffered
	}
	return n.rt.RoundTrip(r)
}

var errNTLMNotOffered = errors.New("the host offered neither Negotiate nor NTLM authentication; refusing to fall back to Basic (clear-text password)")

// winrmClient builds a masterzen client whose requests all carry ctx: each
// run gets its own cheap winrm.Client around the shared transport.
func (c *winrmTransport) winrmClient(ctx context.Context, rec *postRecorder) (*winrm.Client, error) {
	params := *winrm.DefaultParameters // copy: DefaultParameters is a shared pointer (docs/winrm.md §1.2)
	params.Timeout = isoDuration(c.cfg.OperationTimeout)
	// MaxEnvelopeSize, and the stdin chunk (EnvelopeSize-1000 raw bytes
	// per Send, base64 on the wire: x4/3). 100 KiB keeps a full Send
	// (~135 KB) under the 150 KB MaxEnvelopeSizekb of Windows Server
	// 2008 R2-era hosts (docs/winrm.md §1.4).
	params.EnvelopeSize = 100 << 10
	var t winrm.Transporter
	switch {
	case c.seal != nil:
		t = &sealTransport{c: c, ctx: ctx, rec: rec}
	case c.lib != nil:
		inner, err := c.lib()
		if err != nil {
			return nil, kindErr(ErrConfig, err, "winrm transport")
		}
		if err := inner.Transport(c.libEndpoint); err != nil {
			return nil, kindErr(ErrConfig, err, "winrm transport")
		}
		t = &libTransport{c: c, ctx: ctx, inner: inner, rec: rec}
	default:
		t = &ctxTransport{c: c, ctx: ctx, rec: rec}
	}
	params.TransportDecorator = func() winrm.Transporter { return t }
	ep := &winrm.Endpoint{Host: bracketHost(c.cfg.Host), Port: c.cfg.Port, HTTPS: c.cfg.HTTPS}
	wc, err := winrm.NewClientWithParameters(ep, c.cfg.User, c.cfg.Password, &params)
	if err != nil {
		return nil, kindErr(ErrConfig, err, "winrm client")
	}
	return wc, nil
}

func isoDuration(d time.Duration) string {
	s := int(d / time.Second)
	if s < 1 {
		s = 1
	}
	return "PT" + strconv.Itoa(s) + "S"
}

// postRecorder remembers, per run, the first error that the library would
// otherwise swallow (failed stdin Sends are ignored by
// RunWithContextWithInput) and lets cleanup requests (Signal, Delete) use
// a short context of their own after cancellation.
type postRecorder struct {
	mu       sync.Mutex
	first    error
	cleanCtx context.Context
	// abort ends the run: masterzen ignores a failed stdin Send, and the
	// host would then wait for input that never comes while the client
	// re-polls Receive until the caller's deadline.
	abort context.CancelFunc
}

func (p *postRecorder) note(err error) {
	p.mu.Lock()
	if p.first == nil {
		p.first = err
	}
	abort := p.abort
	p.mu.Unlock()
	if abort != nil {
		abort()
	}
}

func (p *postRecorder) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first
}

// requestCtx picks the context for one request: cleanup requests (Signal,
// Delete) still go out for a few seconds after the run's ctx is done, so a
// cancelled run does not leave a shell behind on the host; everything else
// stops with ctx.
func (p *postRecorder) requestCtx(ctx context.Context, action string) context.Context {
	if ctx.Err() == nil || !(strings.HasSuffix(action, "/Signal") || strings.HasSuffix(action, "/Delete")) {
		return ctx
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cleanCtx == nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		context.AfterFunc(cctx, cancel)
		p.cleanCtx = cctx
	}
	return p.cleanCtx
}

// ctxTransport posts SOAP messages with ctx and checks the answer
// properly. It replaces masterzen's clientRequest, whose Post returns
// non-200 answers with a SOAP content type as success (the deferred
// assignment to unnamed results in http.go is a no-op; still present in
// v0.0.0-20240702205601-3fad6e106085): a fault on Create would give an
// empty ShellId, a fault on Receive an endless re-poll.
type ctxTransport struct {
	c   *winrmTransport
	ctx context.Context
	rec *postRecorder
}

func (t *ctxTransport) Transport(*winrm.Endpoint) error { return nil }

func (t *ctxTransport) Post(_ *winrm.Client, m *soap.SoapMessage) (string, error) {
	setShellOptions(m)
	body := m.String()
	action := soapAction(body)
	ctx := t.rec.requestCtx(t.ctx, action)
	var resp *http.Response
	var err error
	for attempt := 0; ; attempt++ {
		var req *http.Request
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, t.c.cfg.url(), strings.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
		req.Header.Set("User-Agent", "relaylock")
		t.c.auth(req)
		resp, err = t.c.roundTrip(req)
		// Nothing reached the host when the connection could not be set
		// up: try once more (a busy host, a lost SYN).
		if err == nil || attempt > 0 || !connectFailed(err) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err != nil {
		err = lostDuring(t.c.cfg, action, classifyTransport(ctx, t.c.cfg, err))
		t.noteUnlessTimeout(err)
		return "", err
	}
	defer resp.Body.Close()
	out, err := readResponse(t.c.cfg, resp)
	if err == nil {
		err = checkAnswer(action, out)
	}
	if err != nil {
		t.noteUnlessTimeout(err)
		return "", pollTimeout(err)
	}
	return out, nil
}

// lostDuring rewords an ErrUnreachable that happens once a command may
// have started (Send, Receive): the host was reached, and what the script
// did there is unknown.
func lostDuring(cfg WinRMConfig, action string, err error) error {
	var he *hostError
	if !errors.As(err, &he) || he.kind != ErrUnreachable {
		return err
	}
	op := action[strings.LastIndex(action, "/")+1:]
	switch op {
	case "Send", "Receive":
		return withKind(kindErr(ErrUnreachable, he.cause, "lost the connection to %s during %s: the script's outcome on the host is unknown", cfg.hostPort(), op), ErrOutcomeUnknown)
	}
	return err
}

// connectFailed reports an error from setting up the connection (dial,
// TLS handshake), before any request byte was sent.
func connectFailed(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	return libSays(err, libTextTLSHandshakeTimeout)
}

// errPollTimeout is what an idle Receive long-poll ends with. masterzen
// re-polls on errors whose text contains "OperationTimeout" (command.go).
type errPollTimeout struct{ f *FaultError }

func (e errPollTimeout) Error() string { return "OperationTimeout: " + e.f.Error() }
func (e errPollTimeout) Unwrap() error { return e.f }

func pollTimeout(err error) error {
	var fe *FaultError
	if errors.As(err, &fe) && fe.timedOut() {
		return errPollTimeout{fe}
	}
	return err
}

func (t *ctxTransport) noteUnlessTimeout(err error) {
	var fe *FaultError
	if errors.As(err, &fe) && fe.timedOut() {
		return
	}
	t.rec.note(err)
}

// maxResponse bounds one SOAP answer (a Receive carries at most
// MaxEnvelopeSize, 500 KB by default, base64 included).
const maxResponse = 8 << 20

// readResponse turns an HTTP answer into a SOAP body or a typed error.
func readResponse(cfg WinRMConfig, resp *http.Response) (string, error) {
	b, err := readBody(resp.Body, cfg.OperationTimeout+answerSlack, cfg.hostPort())
	if err != nil {
		return "", classifyTransport(context.Background(), cfg, err)
	}
	if len(b) > maxResponse {
		return "", kindErr(ErrWinRM, nil, "answer from %s exceeds %d bytes", cfg.hostPort(), maxResponse)
	}
	isSOAP := strings.Contains(resp.Header.Get("Content-Type"), "application/soap+xml")
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return "", kindErr(ErrAuth, nil, "authentication failed for %s at %s (HTTP 401, %s auth%s)", cfg.User, cfg.hostPort(), cfg.Auth, offered(resp))
	case resp.StatusCode == http.StatusOK && isSOAP:
		return string(b), nil
	case isSOAP && len(b) > 0:
		if f := parseFault(b); f != nil {
			f.Status = resp.StatusCode
			return "", f
		}
	}
	snippet := strings.TrimSpace(string(b))
	if len(snippet) > 200 {
		snippet = snippet[:200] + "..."
	}
	err = kindErr(ErrWinRM, nil, "%s answered HTTP %d (%s) with content type %q: %q", cfg.hostPort(), resp.StatusCode, http.StatusText(resp.StatusCode), resp.Header.Get("Content-Type"), snippet)
	if resp.StatusCode == http.StatusRequestEntityTooLarge {
		err = withKind(err, ErrEnvelopeTooLarge)
	}
	return "", err
}

func offered(resp *http.Response) string {
	mech := AuthSchemes(resp.Header)
	if len(mech) == 0 {
		return ""
	}
	return "; host offers " + strings.Join(mech, ", ")
}

// AuthSchemes lists the authentication schemes of the WWW-Authenticate
// headers of a 401 (RFC 9110 §11.6.1), in order, once each: Windows sends
// one header per scheme ("Negotiate", "Kerberos", "Basic realm=...").
func AuthSchemes(h http.Header) []string {
	var mech []string
	for _, v := range h.Values("WWW-Authenticate") {
		for _, ch := range strings.Split(v, ",") {
			f := strings.Fields(ch)
			// A challenge starts with a token; "realm=..." continues one.
			if len(f) == 0 || strings.Contains(f[0], "=") {
				continue
			}
			if !slices.ContainsFunc(mech, func(m string) bool { return strings.EqualFold(m, f[0]) }) {
				mech = append(mech, f[0])
			}
		}
	}
	return mech
}

// soapAction returns the a:Action of a SOAP message.
func soapAction(body string) string {
	d := xml.NewDecoder(strings.NewReader(body))
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "Action" {
			var s string
			if d.DecodeElement(&s, &se) == nil {
				return strings.TrimSpace(s)
			}
			return ""
		}
		if ee, ok := tok.(xml.EndElement); ok && ee.Name.Local == "Header" {
			return ""
		}
	}
}

// checkAnswer verifies the answers the library trusts blindly: a Create
// answer must name a shell (MS-WSMV 3.1.4.5: ShellId selector) and a
// Command answer a command.
func checkAnswer(action, body string) error {
	if err := wellFormed(action, body); err != nil {
		return err
	}
	switch {
	case strings.HasSuffix(action, "/transfer/Create"):
		if selectorValue(body, "ShellId") == "" {
			return kindErr(ErrWinRM, nil, "create shell: the answer names no ShellId")
		}
	case strings.HasSuffix(action, "/shell/Command"):
		if elementText(body, "CommandId") == "" {
			return kindErr(ErrWinRM, nil, "run command: the answer names no CommandId")
		}
	}
	return nil
}

func selectorValue(body, name string) string {
	d := xml.NewDecoder(strings.NewReader(body))
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "Selector" {
			continue
		}
		for _, a := range se.Attr {
			if a.Name.Local == "Name" && a.Value == name {
				var s string
				if d.DecodeElement(&s, &se) == nil {
					return strings.TrimSpace(s)
				}
			}
		}
	}
}

func elementText(body, local string) string {
	d := xml.NewDecoder(strings.NewReader(body))
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == local {
			var s string
			if d.DecodeElement(&s, &se) == nil {
				return strings.TrimSpace(s)
			}
			return ""
		}
	}
}

// parseFault decodes a SOAP 1.2 fault (MS-WSMV 2.2.4.43); nil if b is not one.
func parseFault(b []byte) *FaultError {
	var env struct {
		Body struct {
			Fault *struct {
				Code struct {
					Value   string `xml:"Value"`
					Subcode struct {
						Value string `xml:"Value"`
					} `xml:"Subcode"`
				} `xml:"Code"`
				Reason struct {
					Text []string `xml:"Text"`
				} `xml:"Reason"`
				Detail struct {
					WSManFault struct {
						Code    string `xml:"Code,attr"`
						Message string `xml:"Message"`
					} `xml:"WSManFault"`
				} `xml:"Detail"`
			} `xml:"Fault"`
		} `xml:"Body"`
	}
	if err := xml.NewDecoder(bytes.NewReader(b)).Decode(&env); err != nil || env.Body.Fault == nil {
		return nil
	}
	f := env.Body.Fault
	return &FaultError{
		Code: strings.TrimSpace(f.Code.Value), Subcode: strings.TrimSpace(f.Code.Subcode.Value),
		Reason: strings.TrimSpace(strings.Join(f.Reason.Text, " ")), WSManCode: strings.TrimSpace(f.Detail.WSManFault.Code),
		Message: strings.TrimSpace(f.Detail.WSManFault.Message),
	}
}

// libTransport wraps masterzen's Kerberos transporter (ClientKerberos),
// which takes no context: it abandons a Post when ctx ends, bounds it with
// a timeout, and classifies errors. It does not serialize Posts:
// RunWithContextWithInput sends stdin while a Receive is outstanding, and
// ClientKerberos keeps no per-session state between requests (each Post
// carries a fresh AP-REQ), so concurrent Posts are safe; two authenticators
// may then carry the same timestamp (see UnverifiedFacts,
// "kerberos-replay-key"). NTLM message encryption is sealTransport, which
// keeps its own per-connection state.
type libTransport struct {
	c     *winrmTransport
	ctx   context.Context
	inner winrm.Transporter
	rec   *postRecorder
}

func (t *libTransport) Transport(*winrm.Endpoint) error { return nil }

func (t *libTransport) Post(wc *winrm.Client, m *soap.SoapMessage) (string, error) {
	setShellOptions(m)
	body := m.String()
	action := soapAction(body)
	ctx := t.rec.requestCtx(t.ctx, action)
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// A library transporter must not crash relaylock on a malformed
		// answer (masterzen's Encryption indexes bodies unchecked).
		defer func() {
			if p := recover(); p != nil {
				ch <- result{"", kindErr(ErrWinRM, nil, "malformed answer from %s (winrm library panic: %v)", t.c.cfg.hostPort(), p)}
			}
		}()
		s, err := t.inner.Post(wc, m)
		ch <- result{s, err}
	}()
	// Bound every request as the own transport does (ClientKerberos has
	// no ctx).
	timer := time.NewTimer(t.c.libTimeout)
	defer timer.Stop()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		r = result{"", ctx.Err()}
	case <-timer.C:
		r = result{"", kindErr(ErrUnreachable, nil, "cannot reach %s (no answer in %v)", t.c.cfg.hostPort(), t.c.libTimeout)}
	}
	if r.err != nil {
		err := lostDuring(t.c.cfg, action, t.classifyLib(ctx, r.err))
		var fe *FaultError
		if !(errors.As(err, &fe) && fe.timedOut()) {
			t.rec.note(err)
		}
		return "", pollTimeout(err)
	}
	// The library transporters may hand back a fault body as success.
	if f := parseFault([]byte(r.s)); f != nil {
		if !f.timedOut() {
			t.rec.note(f)
		}
		return "", pollTimeout(f)
	}
	if err := checkAnswer(action, r.s); err != nil {
		t.rec.note(err)
		return "", err
	}
	return r.s, nil
}

func (t *libTransport) classifyLib(ctx context.Context, err error) error {
	switch {
	case libSays(err, libTextHTTP401):
		return kindErr(ErrAuth, err, "authentication failed for %s at %s", t.c.cfg.User, t.c.cfg.hostPort())
	case libSays(err, libTextKerberosAuth):
		return kindErr(ErrAuth, err, "kerberos authentication failed for %s at %s", t.c.cfg.User, t.c.cfg.hostPort())
	case libSays(err, libTextKerberosSPN):
		return withKind(kindErr(ErrAuth, err, "the Kerberos KDC knows no service principal %s (for %s)", t.c.cfg.SPN, t.c.cfg.hostPort()), ErrKerberosSPN)
	case libSays(err, libTextKDCUnreachable):
		return withKind(kindErr(ErrUnreachable, err, "cannot reach a Kerberos KDC for %s (Kerberos configuration %s)", t.c.cfg.User, t.c.cfg.KrbConfig), ErrKDCUnreachable)
	}
	// masterzen/winrm puts a non-200 answer's body into its error text
	// ("http error %d: %s"): a SOAP fault there is parsed, as XML, into a
	// typed *FaultError.
	s := err.Error()
	if i := strings.Index(s, "<"); i >= 0 {
		if f := parseFault([]byte(s[i:])); f != nil {
			return f
		}
	}
	if libSays(err, libTextHTTP413) {
		return withKind(classifyTransport(ctx, t.c.cfg, err), ErrEnvelopeTooLarge)
	}
	return classifyTransport(ctx, t.c.cfg, err)
}
