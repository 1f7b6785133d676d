package lab

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bodgit/ntlmssp"
	"github.com/masterzen/winrm"
)

// MS-NLMP 4.2.4 (NTLMv2): User "User", Domain "Domain", Password
// "Password", ServerChallenge 0123456789abcdef, ClientChallenge aa..aa,
// RandomSessionKey 55..55, Time 0, and the CHALLENGE flags e28a8233.
var (
	specChallenge = [8]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	specFlags     = uint32(0xe28a8233)
	// 4.2.4.2.2 NTProofStr ‖ 4.2.4.1.3 temp.
	specNTResponse = []byte{
		0x68, 0xcd, 0x0a, 0xb8, 0x51, 0xe5, 0x1c, 0x96, 0xaa, 0xbc, 0x92, 0x7b, 0xeb, 0xef, 0x6a, 0x1c,
		0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0x00, 0x00, 0x00, 0x00,
		0x02, 0x00, 0x0c, 0x00, 0x44, 0x00, 0x6f, 0x00, 0x6d, 0x00, 0x61, 0x00, 0x69, 0x00, 0x6e, 0x00,
		0x01, 0x00, 0x0c, 0x00, 0x53, 0x00, 0x65, 0x00, 0x72, 0x00, 0x76, 0x00, 0x65, 0x00, 0x72, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	}
	specSessionBaseKey = []byte{0x8d, 0xe4, 0x0c, 0xca, 0xdb, 0xc1, 0x4a, 0x82, 0xf1, 0x5c, 0xb0, 0xad, 0x0d, 0xe9, 0x5c, 0xa3}
	// 4.2.4.2.3.
	specEncryptedSessionKey = []byte{0xc5, 0xda, 0xd2, 0x54, 0x4f, 0xc9, 0x79, 0x90, 0x94, 0xce, 0x1c, 0xe9, 0x0b, 0xc9, 0xd0, 0x3e}
	// 4.2.4.4: GSS_WrapEx of "Plaintext" (UTF-16LE) by the client.
	specPlaintext = utf16le("Plaintext")
	specSealed    = []byte{0x54, 0xe5, 0x01, 0x65, 0xbf, 0x19, 0x36, 0xdc, 0x99, 0x60, 0x20, 0xc1, 0x81, 0x1b, 0x0f, 0x06, 0xfb, 0x5f}
	specSignature = []byte{0x01, 0x00, 0x00, 0x00, 0x7f, 0xb3, 0x8e, 0xc5, 0xc5, 0x5d, 0x49, 0x76, 0x00, 0x00, 0x00, 0x00}
)

// TestNTLMSpecVectors runs the acceptor and the server's unsealing on the
// NTLMv2 example of MS-NLMP 4.2.4: the session base key, the exported
// session key unwrapped from the EncryptedRandomSessionKey, and the
// client's sealed "Plaintext" with its signature.
func TestNTLMSpecVectors(t *testing.T) {
	a := &ntlmAuthenticate{User: "User", Domain: "Domain", NTResponse: specNTResponse, Flags: specFlags, EncryptedRandomSessionKey: specEncryptedSessionKey}
	base, ok := acceptNTLMv2(a, "Password", specChallenge)
	if !ok || !bytes.Equal(base, specSessionBaseKey) {
		t.Fatalf("SessionBaseKey % x (ok %v), want % x", base, ok, specSessionBaseKey)
	}
	if _, ok := acceptNTLMv2(a, "Passwort", specChallenge); ok {
		t.Fatal("a wrong password was accepted")
	}
	exported, err := exportedSessionKey(specFlags, base, specEncryptedSessionKey)
	if err != nil || !bytes.Equal(exported, bytes.Repeat([]byte{0x55}, 16)) {
		t.Fatalf("ExportedSessionKey % x, %v", exported, err)
	}
	// 4.2.4.4: the client's keys, as derived on the server side.
	if got, want := signKey(exported, clientSigningMagic), []byte{0x47, 0x88, 0xdc, 0x86, 0x1b, 0x47, 0x82, 0xf3, 0x5d, 0x43, 0xfd, 0x98, 0xfe, 0x1a, 0x2d, 0x39}; !bytes.Equal(got, want) {
		t.Errorf("client signing key % x, want % x", got, want)
	}
	if got, want := sealKey(specFlags, exported, clientSealingMagic), []byte{0x59, 0xf6, 0x00, 0x97, 0x3c, 0xc4, 0x96, 0x0a, 0x25, 0x48, 0x0a, 0x7c, 0x19, 0x6e, 0x4c, 0x58}; !bytes.Equal(got, want) {
		t.Errorf("client sealing key % x, want % x", got, want)
	}
	s, err := newServerSealing(specFlags, exported)
	if err != nil || s == nil {
		t.Fatalf("sealing: %v, %v", s, err)
	}
	msg, err := s.unseal(specSealed, specSignature)
	if err != nil || !bytes.Equal(msg, specPlaintext) {
		t.Fatalf("unseal: % x, %v", msg, err)
	}
	if s.seqIn != 1 {
		t.Fatalf("incoming sequence number %d after one message", s.seqIn)
	}

	// Each check on its own: the same message with one thing wrong.
	for _, tc := range []struct {
		name string
		mod  func(sealed, sig []byte)
		want string
	}{
		{"sealed data", func(sealed, _ []byte) { sealed[3] ^= 1 }, "bad signature"},
		{"checksum", func(_, sig []byte) { sig[5] ^= 1 }, "bad signature"},
		{"version", func(_, sig []byte) { sig[0] = 2 }, "version"},
		// The checksum covers the expected sequence number, so it stays
		// right; only the field disagrees.
		{"sequence number", func(_, sig []byte) { sig[12] = 1 }, "sequence number 1, expected 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newServerSealing(specFlags, exported)
			sealed, sig := bytes.Clone(specSealed), bytes.Clone(specSignature)
			tc.mod(sealed, sig)
			if _, err := s.unseal(sealed, sig); !errors.Is(err, errSeal) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}

	// The same message again is a replay: the RC4 stream and the
	// sequence number have moved on.
	if _, err := s.unseal(specSealed, specSignature); err == nil {
		t.Fatal("a replayed message was accepted")
	}
}

func TestChallengeFlags(t *testing.T) {
	const (
		goNTLMSSP = ntlmNegotiateTargetInfo | ntlmNegotiate56 | ntlmNegotiate128 | ntlmNegotiateUnicode | ntlmNegotiateExtendedSecure | 0x3000
		// ntlm-auth (pywinrm) and bodgit/ntlmssp (relaylock) at NTLMv2.
		sealer = ntlmNegotiateTargetInfo | ntlmNegotiate128 | ntlmNegotiate56 | ntlmNegotiateUnicode | ntlmNegotiateVersion |
			ntlmNegotiateKeyExch | ntlmNegotiateAlwaysSign | ntlmNegotiateSign | ntlmNegotiateSeal | ntlmNegotiateExtendedSecure
		sealing = ntlmNegotiateSign | ntlmNegotiateSeal | ntlmNegotiateKeyExch
	)
	for _, tc := range []struct {
		name      string
		neg       uint32
		canSeal   bool
		want, not uint32
	}{
		{"go-ntlmssp never sees KEY_EXCH or LM_KEY", goNTLMSSP, true, ntlmNegotiateExtendedSecure | ntlmNegotiate128 | ntlmNegotiate56, sealing | ntlmNegotiateLMKey | ntlmNegotiateAlwaysSign},
		{"a sealing client gets what it asked", sealer, true, sealing | ntlmNegotiateAlwaysSign | ntlmNegotiateExtendedSecure | ntlmNegotiate128, ntlmNegotiateLMKey},
		{"a host that cannot seal", sealer, false, ntlmNegotiateExtendedSecure, sealing},
		{"LM_KEY is never echoed", sealer | ntlmNegotiateLMKey, true, sealing, ntlmNegotiateLMKey},
		{"no sealing without extended session security", sealer &^ ntlmNegotiateExtendedSecure, true, 0, sealing | ntlmNegotiateExtendedSecure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := challengeFlags(tc.neg, tc.canSeal)
			if got&challengeBaseFlags != challengeBaseFlags || got&tc.want != tc.want || got&tc.not != 0 {
				t.Fatalf("flags %#08x: want %#08x set and %#08x clear", got, tc.want, tc.not)
			}
		})
	}
}

func TestParseEncrypted(t *testing.T) {
	sig := bytes.Repeat([]byte{0xee}, 16)
	frame := func(ct, original string, sigLen uint32, sig, data []byte, end string) []byte {
		var b bytes.Buffer
		b.WriteString("--Encrypted Boundary\r\n\tContent-Type: " + ct + "\r\n\tOriginalContent: " + original + "\r\n")
		b.WriteString("--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n")
		_ = binary.Write(&b, binary.LittleEndian, sigLen)
		b.Write(sig)
		b.Write(data)
		b.WriteString(end)
		return b.Bytes()
	}
	const orig5 = "type=application/soap+xml;charset=UTF-8;Length=5"
	good := frame(sealProtocol, orig5, 16, sig, []byte("ab--c"), "--Encrypted Boundary--\r\n")
	parts, err := parseEncrypted(good, false)
	if err != nil || len(parts) != 1 || string(parts[0].sealed) != "ab--c" || !bytes.Equal(parts[0].sig, sig) {
		t.Fatalf("good body: %+v, %v", parts, err)
	}
	// The built answer parses back.
	if parts, err := parseEncrypted(buildEncrypted(sig, []byte("hello")), false); err != nil || string(parts[0].sealed) != "hello" {
		t.Fatalf("built body: %+v, %v", parts, err)
	}
	// x-multi-encrypted: two chunks.
	two := append(bytes.TrimSuffix(good, []byte("--Encrypted Boundary--\r\n")), good...)
	if parts, err := parseEncrypted(two, true); err != nil || len(parts) != 2 {
		t.Fatalf("two chunks: %+v, %v", parts, err)
	}
	for _, tc := range []struct {
		name  string
		body  []byte
		multi bool
	}{
		{"two chunks in multipart/encrypted", two, false},
		{"Length too short", frame(sealProtocol, "type=application/soap+xml;charset=UTF-8;Length=4", 16, sig, []byte("ab--c"), "--Encrypted Boundary--\r\n"), false},
		{"Length too long", frame(sealProtocol, "type=application/soap+xml;charset=UTF-8;Length=6", 16, sig, []byte("ab--c"), "--Encrypted Boundary--\r\n"), false},
		{"no Length", frame(sealProtocol, "type=application/soap+xml;charset=UTF-8", 16, sig, []byte("ab--c"), "--Encrypted Boundary--\r\n"), false},
		{"negative Length", frame(sealProtocol, "type=application/soap+xml;charset=UTF-8;Length=-5", 16, sig, []byte("ab--c"), "--Encrypted Boundary--\r\n"), false},
		{"signature length 15", frame(sealProtocol, orig5, 15, sig[:15], []byte("ab--cd"), "--Encrypted Boundary--\r\n"), false},
		{"not SOAP inside", frame(sealProtocol, "type=text/plain;Length=5", 16, sig, []byte("ab--c"), "--Encrypted Boundary--\r\n"), false},
		{"CredSSP protocol", frame("application/HTTP-CredSSP-session-encrypted", orig5, 16, sig, []byte("ab--c"), "--Encrypted Boundary--\r\n"), false},
		{"no closing boundary", frame(sealProtocol, orig5, 16, sig, []byte("ab--c"), ""), false},
		{"trailing bytes", frame(sealProtocol, orig5, 16, sig, []byte("ab--c"), "--Encrypted Boundary--\r\nx"), false},
		{"truncated", good[:70], false},
		{"empty", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if parts, err := parseEncrypted(tc.body, tc.multi); !errors.Is(err, errSeal) {
				t.Fatalf("parsed: %+v, %v", parts, err)
			}
		})
	}
}

// sealClient is a test client for sealed WinRM on one TCP connection,
// built on bodgit/ntlmssp's client (not on the lab's code), with hooks to
// tamper with what it sends.
type sealClient struct {
	t    *testing.T
	url  string
	tr   *http.Transport
	hc   *http.Client
	sec  *ntlmssp.SecuritySession
	last []byte // the last body sent
}

func newSealClient(t *testing.T, url, user, password string) *sealClient {
	t.Helper()
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	c := &sealClient{t: t, url: url, tr: tr, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	name, domain := user, ""
	if d, n, ok := strings.Cut(user, `\`); ok {
		name, domain = n, d
	}
	nc, err := ntlmssp.NewClient(ntlmssp.SetUserInfo(name, password), ntlmssp.SetDomain(domain), ntlmssp.SetVersion(ntlmssp.DefaultVersion()))
	if err != nil {
		t.Fatal(err)
	}
	neg, err := nc.Authenticate(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := c.do("Negotiate "+base64.StdEncoding.EncodeToString(neg), "", nil)
	tok, ok := strings.CutPrefix(resp.Header.Get("WWW-Authenticate"), "Negotiate ")
	if resp.StatusCode != 401 || !ok {
		t.Fatalf("negotiate: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	chal, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	if f := binary.LittleEndian.Uint32(chal[20:]); f&(ntlmNegotiateSeal|ntlmNegotiateKeyExch) != ntlmNegotiateSeal|ntlmNegotiateKeyExch {
		t.Fatalf("the CHALLENGE offers no sealing: flags %#08x", f)
	}
	auth, err := nc.Authenticate(chal, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp := c.do("Negotiate "+base64.StdEncoding.EncodeToString(auth), "", nil); resp.StatusCode != 200 {
		t.Fatalf("authenticate: %d", resp.StatusCode)
	}
	if c.sec = nc.SecuritySession(); c.sec == nil {
		t.Fatal("no security session")
	}
	return c
}

type sealResp struct {
	*http.Response
	body []byte
}

func (c *sealClient) do(auth, ct string, body []byte) sealResp {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ct == "" {
		ct = soapCT
	}
	req.Header.Set("Content-Type", ct)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	c.last = body
	return sealResp{resp, b}
}

// wire seals msg as pywinrm and Windows frame it, written here
// independently of buildEncrypted.
func (c *sealClient) wire(msg []byte) []byte {
	sealed, sig, err := c.sec.Wrap(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString("--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n")
	b.WriteString("\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=")
	b.WriteString(strconv.Itoa(len(msg)) + "\r\n")
	b.WriteString("--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n")
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(sig)))
	b.Write(sig)
	b.Write(sealed)
	b.WriteString("--Encrypted Boundary--\r\n")
	return b.Bytes()
}

// send posts a sealed message and unseals the answer, which must be
// sealed.
func (c *sealClient) send(msg string) (int, string) {
	c.t.Helper()
	resp := c.post(c.wire([]byte(msg)))
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), `multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted"`) {
		c.t.Fatalf("answer %d is not sealed: %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.body)
	}
	return resp.StatusCode, c.unseal(resp.body)
}

func (c *sealClient) post(wire []byte) sealResp {
	return c.do("", sealedCT, wire)
}

// unseal parses an answer the way pywinrm does (split at the boundary,
// Length checked) and unwraps it with bodgit/ntlmssp.
func (c *sealClient) unseal(body []byte) string {
	c.t.Helper()
	parts := bytes.Split(body, []byte("--Encrypted Boundary\r\n"))
	if len(parts) != 3 || len(parts[0]) != 0 {
		c.t.Fatalf("answer framing: %q", body)
	}
	_, l, ok := bytes.Cut(parts[1], []byte("Length="))
	if !ok {
		c.t.Fatalf("no Length: %q", parts[1])
	}
	payload, ok := bytes.CutSuffix(parts[2], []byte("--Encrypted Boundary--\r\n"))
	payload, ok2 := bytes.CutPrefix(payload, []byte("\tContent-Type: application/octet-stream\r\n"))
	if !ok || !ok2 || len(payload) < 20 || binary.LittleEndian.Uint32(payload) != 16 {
		c.t.Fatalf("answer data part: %q", parts[2])
	}
	msg, err := c.sec.Unwrap(payload[20:], payload[4:20])
	if err != nil {
		c.t.Fatalf("unwrap the answer: %v", err)
	}
	if strconv.Itoa(len(msg)) != string(bytes.TrimSpace(l)) {
		c.t.Fatalf("answer Length %s, unsealed %d bytes", l, len(msg))
	}
	return string(msg)
}

// TestSealedHTTP drives a sealing-required plain-HTTP listener (the
// Windows default) with an independent client: sealed messages work and
// their answers come back sealed, with sequence numbers advancing on one
// connection; an unsealed message, a tampered one, a replayed one and a
// sealed one on a connection without an NTLM session are refused.
func TestSealedHTTP(t *testing.T) {
	ts := startWSMan(t, false, WSManConfig{MaxOperationTimeout: time.Second})
	url := "http://" + ts.Addr().String() + "/wsman"
	c := newSealClient(t, url, testUser, testPass)

	// Several messages on one connection: Create, Command, Receive, Delete.
	status, body := c.send(soapRequest(actionCreate, "", "PT5S", `<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>`))
	shell := between(body, `<w:Selector Name="ShellId">`, "</w:Selector>")
	if status != 200 || shell == "" {
		t.Fatalf("create: %d %s", status, body)
	}
	status, body = c.send(soapRequest(actionCommand, shell, "PT5S", `<rsp:CommandLine><rsp:Command>echo</rsp:Command><rsp:Arguments>sealed hello</rsp:Arguments></rsp:CommandLine>`))
	cmd := between(body, "<rsp:CommandId>", "</rsp:CommandId>")
	if status != 200 || cmd == "" {
		t.Fatalf("command: %d %s", status, body)
	}
	status, body = c.send(soapRequest(actionReceive, shell, "PT5S", `<rsp:Receive><rsp:DesiredStream CommandId="`+cmd+`">stdout stderr</rsp:DesiredStream></rsp:Receive>`))
	if status != 200 || !strings.Contains(body, base64.StdEncoding.EncodeToString([]byte("sealed hello\r\n"))) {
		t.Fatalf("receive: %d %s", status, body)
	}
	// A fault is sealed too (HTTP 500).
	status, body = c.send(soapRequest(actionReceive, "00000000-0000-0000-0000-000000000000", "PT5S", `<rsp:Receive><rsp:DesiredStream CommandId="`+cmd+`">stdout</rsp:DesiredStream></rsp:Receive>`))
	if status != 500 || !strings.Contains(body, "shell was not found") {
		t.Fatalf("fault: %d %s", status, body)
	}
	var seqs []uint32
	for _, call := range ts.Calls() {
		if call.Sealed {
			seqs = append(seqs, call.SeqNum)
		}
	}
	if len(seqs) != 4 || seqs[0] != 0 || seqs[1] != 1 || seqs[2] != 2 || seqs[3] != 3 {
		t.Fatalf("sealed calls' sequence numbers %v, want 0 1 2 3", seqs)
	}
	if n := ntlmHandshakes(ts.WSMan); n != 1 {
		t.Fatalf("%d NTLM handshakes, want 1 (one connection)", n)
	}

	// Unsealed SOAP on the authenticated connection: 401.
	if resp := c.do("", "", []byte(soapRequest(actionDelete, shell, "PT5S", ""))); resp.StatusCode != 401 {
		t.Fatalf("unsealed on an authenticated connection: %d", resp.StatusCode)
	}

	// Tampering: each on a fresh connection, and each refused with 400
	// before anything runs.
	del := soapRequest(actionDelete, shell, "PT5S", "")
	for _, tc := range []struct {
		name string
		mod  func(w []byte) []byte
	}{
		{"sealed data", func(w []byte) []byte { w[len(w)-30] ^= 0x01; return w }},
		{"signature", func(w []byte) []byte {
			i := bytes.Index(w, []byte("octet-stream\r\n")) + len("octet-stream\r\n") + 4 + 6
			w[i] ^= 0x80
			return w
		}},
		{"declared length", func(w []byte) []byte {
			return bytes.Replace(w, []byte("Length="+strconv.Itoa(len(del))), []byte("Length="+strconv.Itoa(len(del)-1)), 1)
		}},
		{"replay", func(w []byte) []byte { return w }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSealClient(t, url, testUser, testPass)
			if tc.name == "replay" {
				if status, _ := c.send(soapRequest(actionCreate, "", "PT5S", `<rsp:Shell/>`)); status != 200 {
					t.Fatalf("create: %d", status)
				}
				resp := c.post(c.last)
				if resp.StatusCode != 400 {
					t.Fatalf("replayed message: %d", resp.StatusCode)
				}
				return
			}
			before := ts.OpenShells()
			resp := c.post(tc.mod(c.wire([]byte(del))))
			if resp.StatusCode != 400 || !resp.Close {
				t.Fatalf("tampered message: %d, connection closed %v", resp.StatusCode, resp.Close)
			}
			if ts.OpenShells() != before {
				t.Fatal("the tampered Delete ran")
			}
			// The session is over: the next message (on a new
			// connection, the lab closed the old one) is unauthenticated.
			if resp := c.post(c.wire([]byte(del))); resp.StatusCode != 401 {
				t.Fatalf("after a refused message: %d", resp.StatusCode)
			}
		})
	}
	if ts.OpenShells() != 2 { // the first shell and the replay test's
		t.Fatalf("%d open shells", ts.OpenShells())
	}

	// A sealed message with no NTLM session: fresh connection, Basic.
	wire := c.wire([]byte(del))
	for _, basic := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(wire))
		req.Header.Set("Content-Type", sealedCT)
		if basic {
			req.SetBasicAuth(testUser, testPass)
		}
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("sealed without an NTLM session (basic %v): %d", basic, resp.StatusCode)
		}
	}
}

// TestDisableSealing: a host that cannot seal never offers it, and says
// 415 to a sealed body.
func TestDisableSealing(t *testing.T) {
	ts := startWSMan(t, false, WSManConfig{DisableSealing: true, AllowUnencrypted: true})
	nc, _ := ntlmssp.NewClient(ntlmssp.SetUserInfo("relaylock", testPass), ntlmssp.SetDomain("LAB"))
	neg, _ := nc.Authenticate(nil, nil)
	req, _ := http.NewRequest(http.MethodPost, "http://"+ts.Addr().String()+"/wsman", nil)
	req.Header.Set("Authorization", "Negotiate "+base64.StdEncoding.EncodeToString(neg))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	chal, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(resp.Header.Get("WWW-Authenticate"), "Negotiate "))
	if len(chal) < 24 || binary.LittleEndian.Uint32(chal[20:])&(ntlmNegotiateSign|ntlmNegotiateSeal|ntlmNegotiateKeyExch) != 0 {
		t.Fatalf("challenge %x offers signing or sealing", chal)
	}
	req, _ = http.NewRequest(http.MethodPost, "http://"+ts.Addr().String()+"/wsman", strings.NewReader("--Encrypted Boundary\r\n"))
	req.SetBasicAuth(testUser, testPass)
	req.Header.Set("Content-Type", sealedCT)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("sealed body to a host that cannot seal: %d", resp.StatusCode)
	}
}

// TestMasterzenEncryption runs a third sealing implementation, masterzen's
// NewEncryption (bodgit/ntlmssp underneath): its first message, sealed on
// a freshly authenticated connection, is accepted and answered sealed.
// Its next message comes from a fresh NTLM client that skipped the
// handshake on the already-authenticated connection (the flaw
// remediate/ntlmseal.go describes), so it carries no valid seal: the lab
// refuses it with 400 and never runs the command.
func TestMasterzenEncryption(t *testing.T) {
	ts := startWSMan(t, false, WSManConfig{})
	enc, err := winrm.NewEncryption("ntlm")
	if err != nil {
		t.Fatal(err)
	}
	p := *winrm.DefaultParameters
	p.TransportDecorator = func() winrm.Transporter { return enc }
	c, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: ts.host, Port: ts.port}, testUser, testPass, &p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, _, _, err := c.RunCmdWithContext(ctx, "echo x"); err == nil {
		t.Fatal("masterzen's unsealed second message succeeded")
	}
	var createdSealed, refused bool
	for _, call := range ts.Calls() {
		createdSealed = createdSealed || (call.Action == "Create" && call.Status == 200 && call.Sealed && call.SeqNum == 0)
		refused = refused || (call.Status == http.StatusBadRequest && call.Fault == "sealed-refused")
	}
	if !createdSealed || !refused || ts.CountCalls("Command") != 0 || len(ts.Runs()) != 0 {
		t.Fatalf("calls %+v", ts.Calls())
	}
}
