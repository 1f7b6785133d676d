package remediate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bodgit/ntlmssp"
	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

// NTLM message encryption for WinRM over plain HTTP (MS-WSMV 2.2.9.1,
// "Encrypted Message Types"; the NTLM security context is MS-NLMP 3.4).
// A default Windows listener is HTTP on 5985 with AllowUnencrypted=false:
// every SOAP message must be sealed with the NTLM session of the TCP
// connection it travels on.
//
// masterzen's Encryption (v0.0.0-20240702205601-3fad6e106085) is not used:
// it starts a fresh NTLM client for every message and relies on the host
// challenging an empty "priming" POST each time, so on a keep-alive
// connection the host already trusts it sends the message with no sealed
// data at all; if the priming POST fails it silently posts the SOAP
// message unencrypted; it ignores the HTTP status of encrypted answers and
// panics on malformed ones. Here each session owns one TCP connection
// (its own http.Transport with one connection), authenticates it once
// with an empty POST (as pywinrm does), and then seals every message with
// bodgit/ntlmssp's security context, strictly one message at a time so
// the sequence numbers stay in step. Concurrent requests (the library
// polls Receive while it Sends stdin) use separate sessions from a small
// pool. A session whose connection was lost (HTTP 401 on a sealed
// message, which the host never processed) is replaced once.

const (
	sealBoundary   = "--Encrypted Boundary"
	sealProtocol   = "application/HTTP-SPNEGO-session-encrypted"
	sealCT         = `multipart/encrypted;protocol="` + sealProtocol + `";boundary="Encrypted Boundary"`
	soapCT         = "application/soap+xml;charset=UTF-8"
	sealPoolSize   = 4
	ntlmSignLength = 16 // NTLMSSP_MESSAGE_SIGNATURE with extended session security (MS-NLMP 2.2.2.9.1)
)

// sealPool holds authenticated sessions to one host.
type sealPool struct {
	cfg  WinRMConfig
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	idle chan *sealSession
}

func newSealPool(cfg WinRMConfig, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *sealPool {
	return &sealPool{cfg: cfg, dial: dial, idle: make(chan *sealSession, sealPoolSize)}
}

type sealSession struct {
	url string
	// bodyLimit bounds reading one answer's body (readBody).
	bodyLimit time.Duration
	tr        *http.Transport
	hc        *http.Client
	sec       *ntlmssp.SecuritySession
	used      bool // has carried a sealed message (a 401 then means a lost connection)
}

func (s *sealSession) close() { s.tr.CloseIdleConnections() }

func (p *sealPool) get(ctx context.Context) (*sealSession, error) {
	select {
	case s := <-p.idle:
		return s, nil
	default:
	}
	return p.open(ctx)
}

func (p *sealPool) put(s *sealSession) {
	select {
	case p.idle <- s:
	default:
		s.close()
	}
}

// ntlmUser splits DOMAIN\user; a UPN (user@domain) is sent whole with an
// empty domain (MS-NLMP 2.2.1.3: UserName may be a UPN).
func ntlmUser(u string) (user, domain string) {
	if d, n, ok := strings.Cut(u, `\`); ok {
		return n, d
	}
	return u, ""
}

// open authenticates a new connection: NEGOTIATE, CHALLENGE, AUTHENTICATE
// on an empty POST (MS-NLMP 3.1.5; the HTTP carriage is Negotiate, RFC 4559).
func (p *sealPool) open(ctx context.Context) (*sealSession, error) {
	tr := &http.Transport{
		DialContext: p.dial, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1,
		ResponseHeaderTimeout: p.cfg.OperationTimeout + answerSlack, IdleConnTimeout: 60 * time.Second,
		DisableCompression: true,
	}
	s := &sealSession{url: p.cfg.url(), bodyLimit: p.cfg.OperationTimeout + answerSlack, tr: tr, hc: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	user, domain := ntlmUser(p.cfg.User)
	nc, err := ntlmssp.NewClient(ntlmssp.SetUserInfo(user, p.cfg.Password), ntlmssp.SetDomain(domain), ntlmssp.SetVersion(ntlmssp.DefaultVersion()))
	if err != nil {
		return nil, kindErr(ErrConfig, err, "ntlm client")
	}
	negotiate, err := nc.Authenticate(nil, nil)
	if err != nil {
		return nil, kindErr(ErrWinRM, err, "ntlm negotiate message")
	}
	resp, err := s.post(ctx, "Negotiate "+base64.StdEncoding.EncodeToString(negotiate), "", nil)
	if err != nil {
		s.close()
		return nil, err
	}
	challenge := negotiateToken(resp)
	if resp.StatusCode != http.StatusUnauthorized || challenge == nil {
		s.close()
		if resp.StatusCode == http.StatusUnauthorized {
			return nil, kindErr(ErrAuth, nil, "authentication failed for %s at %s: the host does not offer NTLM (Negotiate)%s", p.cfg.User, p.cfg.hostPort(), offered(resp.Response))
		}
		return nil, kindErr(ErrWinRM, nil, "%s answered the NTLM negotiation with HTTP %d", p.cfg.hostPort(), resp.StatusCode)
	}
	authenticate, err := nc.Authenticate(challenge, nil)
	if err != nil {
		s.close()
		return nil, kindErr(ErrWinRM, err, "ntlm challenge from %s", p.cfg.hostPort())
	}
	resp, err = s.post(ctx, "Negotiate "+base64.StdEncoding.EncodeToString(authenticate), "", nil)
	if err != nil {
		s.close()
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		s.close()
		return nil, kindErr(ErrAuth, nil, "authentication failed for %s at %s (HTTP 401, ntlm auth)", p.cfg.User, p.cfg.hostPort())
	case resp.StatusCode != http.StatusOK:
		s.close()
		return nil, kindErr(ErrWinRM, nil, "%s answered the NTLM authentication with HTTP %d", p.cfg.hostPort(), resp.StatusCode)
	}
	s.sec = nc.SecuritySession()
	if s.sec == nil {
		s.close()
		return nil, kindErr(ErrWinRM, nil, "%s did not negotiate NTLM signing and sealing: message encryption is impossible; use HTTPS", p.cfg.hostPort())
	}
	return s, nil
}

// bodyResp is an answer whose body was read (and the connection kept).
type bodyResp struct {
	*http.Response
	body []byte
}

func (s *sealSession) post(ctx context.Context, auth, ct string, body []byte) (*bodyResp, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	return s.do(req, auth, ct)
}

func (s *sealSession) do(req *http.Request, auth, ct string) (*bodyResp, error) {
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ct == "" {
		ct = soapCT
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "relaylock")
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := readBody(resp.Body, s.bodyLimit, req.URL.Host)
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponse {
		return nil, kindErr(ErrWinRM, nil, "answer exceeds %d bytes", maxResponse)
	}
	return &bodyResp{resp, b}, nil
}

func negotiateToken(r *bodyResp) []byte {
	for _, v := range r.Header.Values("WWW-Authenticate") {
		if tok, ok := strings.CutPrefix(v, "Negotiate "); ok {
			if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(tok)); err == nil {
				return b
			}
		}
	}
	return nil
}

// sealMessage frames a sealed SOAP message as MS-WSMV 2.2.9.1.1 shows it.
func sealMessage(sec *ntlmssp.SecuritySession, msg []byte) ([]byte, error) {
	sealed, sig, err := sec.Wrap(msg)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(sealBoundary + "\r\n\tContent-Type: " + sealProtocol + "\r\n")
	fmt.Fprintf(&b, "\tOriginalContent: type=%s;Length=%d\r\n", soapCT, len(msg))
	b.WriteString(sealBoundary + "\r\n\tContent-Type: application/octet-stream\r\n")
	binary.Write(&b, binary.LittleEndian, uint32(len(sig))) //nolint:errcheck // bytes.Buffer
	b.Write(sig)
	b.Write(sealed)
	b.WriteString(sealBoundary + "--\r\n")
	return b.Bytes(), nil
}

var errSealFormat = errors.New("malformed encrypted answer")

// unsealMessage parses and unseals an encrypted answer, checking the
// length the host declared (OriginalContent) and the NTLM signature.
func unsealMessage(sec *ntlmssp.SecuritySession, body []byte) ([]byte, error) {
	first := []byte(sealBoundary + "\r\n")
	if !bytes.HasPrefix(body, first) {
		return nil, errSealFormat
	}
	rest := body[len(first):]
	i := bytes.Index(rest, first)
	if i < 0 {
		return nil, errSealFormat
	}
	header, rest := rest[:i], rest[i+len(first):]
	_, lenText, ok := bytes.Cut(header, []byte("Length="))
	if !ok {
		return nil, errSealFormat
	}
	want, err := strconv.Atoi(string(bytes.TrimSpace(lenText)))
	if err != nil || want < 0 {
		return nil, errSealFormat
	}
	rest, ok = bytes.CutPrefix(rest, []byte("\tContent-Type: application/octet-stream\r\n"))
	if !ok {
		return nil, errSealFormat
	}
	rest, ok = bytes.CutSuffix(rest, []byte(sealBoundary+"--\r\n"))
	if !ok || len(rest) < 4 {
		return nil, errSealFormat
	}
	n := int(binary.LittleEndian.Uint32(rest))
	if n != ntlmSignLength || len(rest) < 4+n {
		return nil, errSealFormat
	}
	msg, err := sec.Unwrap(rest[4+n:], rest[4:4+n])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSealFormat, err)
	}
	if len(msg) != want {
		return nil, fmt.Errorf("%w: length %d, declared %d", errSealFormat, len(msg), want)
	}
	return msg, nil
}

// sealTransport is the masterzen Transporter for one run over sealed NTLM.
type sealTransport struct {
	c   *winrmTransport
	ctx context.Context
	rec *postRecorder
}

func (t *sealTransport) Transport(*winrm.Endpoint) error { return nil }

func (t *sealTransport) Post(_ *winrm.Client, m *soap.SoapMessage) (string, error) {
	setShellOptions(m)
	body := m.String()
	action := soapAction(body)
	ctx := t.rec.requestCtx(t.ctx, action)
	out, err := t.post(ctx, action, []byte(body))
	if err == nil {
		err = checkAnswer(action, out)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("winrm %s: %w", t.c.cfg.hostPort(), ctx.Err())
		}
		t.noteUnlessTimeout(err)
		return "", pollTimeout(err)
	}
	return out, nil
}

func (t *sealTransport) noteUnlessTimeout(err error) {
	var fe *FaultError
	if errors.As(err, &fe) && fe.timedOut() {
		return
	}
	t.rec.note(err)
}

func (t *sealTransport) post(ctx context.Context, action string, msg []byte) (string, error) {
	cfg := t.c.cfg
	for attempt := 0; ; attempt++ {
		s, err := t.c.seal.get(ctx)
		if err != nil {
			return "", lostDuring(cfg, action, classifyTransport(ctx, cfg, err))
		}
		wire, err := sealMessage(s.sec, msg)
		if err != nil {
			s.close()
			return "", kindErr(ErrWinRM, err, "seal message")
		}
		resp, err := s.post(ctx, "", sealCT, wire)
		if err != nil {
			s.close() // sequence numbers are now unknown
			return "", lostDuring(cfg, action, classifyTransport(ctx, cfg, err))
		}
		if resp.StatusCode == http.StatusUnauthorized && s.used && attempt == 0 {
			// The host dropped the authenticated connection and the
			// message arrived on a new one; it was not processed.
			s.close()
			continue
		}
		s.used = true
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/encrypted") {
			s.close()
			if resp.StatusCode == http.StatusUnauthorized {
				return "", kindErr(ErrAuth, nil, "authentication failed for %s at %s (HTTP 401 on an encrypted message)", cfg.User, cfg.hostPort())
			}
			return "", kindErr(ErrWinRM, nil, "%s answered an encrypted message with HTTP %d and an unencrypted body (content type %q)", cfg.hostPort(), resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		plain, err := unsealMessage(s.sec, resp.body)
		if err != nil {
			s.close()
			return "", kindErr(ErrWinRM, err, "answer from %s", cfg.hostPort())
		}
		t.c.seal.put(s)
		if resp.StatusCode == http.StatusOK {
			return string(plain), nil
		}
		if f := parseFault(plain); f != nil {
			f.Status = resp.StatusCode
			return "", f
		}
		return "", kindErr(ErrWinRM, nil, "%s answered HTTP %d", cfg.hostPort(), resp.StatusCode)
	}
}
