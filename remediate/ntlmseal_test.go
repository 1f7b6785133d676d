package remediate

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rc4"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/bodgit/ntlmssp"
	//lint:ignore SA1019 NTLM is defined on MD4 (MS-NLMP 3.3.1)
	"golang.org/x/crypto/md4"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// sealServer is a WinRM endpoint with NTLM authentication and NTLM message
// encryption over plain HTTP, written from MS-NLMP (3.3.2 NTLMv2, 3.4.4
// SEAL/SIGN with extended session security and key exchange) and
// MS-WSMV 2.2.9.1 (the multipart/encrypted framing), independently of
// bodgit/ntlmssp, so that the runner's NTLM-over-HTTP path is tested
// against a peer that really seals. Authentication is per TCP connection,
// as on Windows; it wraps fakeWSMan for the WS-Man part.
type sealServer struct {
	f          *fakeWSMan
	user, pass string
	mu         sync.Mutex
	sealed     int // encrypted requests served
	plain      int // unencrypted SOAP requests that reached it after auth
}

type sealConnKey struct{}

// sealConn is the NTLM state of one TCP connection.
type sealConn struct {
	challenge []byte
	flags     uint32
	authed    bool
	// Server side of the security context (MS-NLMP 3.4.4.2).
	inSign, outSign []byte
	inSeal, outSeal *rc4.Cipher
	inSeq, outSeq   uint32
}

const (
	nlmpUnicode    = 0x00000001
	nlmpReqTarget  = 0x00000004
	nlmpSign       = 0x00000010
	nlmpSeal       = 0x00000020
	nlmpNTLM       = 0x00000200
	nlmpAlwaysSign = 0x00008000
	nlmpTypeDomain = 0x00010000
	nlmpESS        = 0x00080000
	nlmpTargetInfo = 0x00800000
	nlmpVersion    = 0x02000000
	nlmp128        = 0x20000000
	nlmpKeyExch    = 0x40000000
	nlmp56         = 0x80000000
)

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func fromUTF16le(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	h := hmac.New(md5.New, key)
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

// challengeMessage builds an NTLM CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2).
func (c *sealConn) challengeMessage() []byte {
	c.challenge = make([]byte, 8)
	rand.Read(c.challenge)
	c.flags = nlmpUnicode | nlmpReqTarget | nlmpSign | nlmpSeal | nlmpNTLM | nlmpAlwaysSign | nlmpTypeDomain |
		nlmpESS | nlmpTargetInfo | nlmpVersion | nlmp128 | nlmpKeyExch | nlmp56
	target := utf16le("FAKE")
	var ti bytes.Buffer
	av := func(id uint16, v []byte) {
		binary.Write(&ti, binary.LittleEndian, id)
		binary.Write(&ti, binary.LittleEndian, uint16(len(v)))
		ti.Write(v)
	}
	av(2, utf16le("FAKE"))    // MsvAvNbDomainName
	av(1, utf16le("MAIL1"))   // MsvAvNbComputerName
	av(4, utf16le("fake.lo")) // MsvAvDnsDomainName
	av(3, utf16le("mail1.fake.lo"))
	ts := make([]byte, 8)
	binary.LittleEndian.PutUint64(ts, uint64(time.Now().UnixNano()/100+116444736000000000))
	av(7, ts) // MsvAvTimestamp
	av(0, nil)
	const hdr = 56
	b := make([]byte, hdr)
	copy(b, "NTLMSSP\x00")
	binary.LittleEndian.PutUint32(b[8:], 2)
	binary.LittleEndian.PutUint16(b[12:], uint16(len(target)))
	binary.LittleEndian.PutUint16(b[14:], uint16(len(target)))
	binary.LittleEndian.PutUint32(b[16:], hdr)
	binary.LittleEndian.PutUint32(b[20:], c.flags)
	copy(b[24:], c.challenge)
	binary.LittleEndian.PutUint16(b[40:], uint16(ti.Len()))
	binary.LittleEndian.PutUint16(b[42:], uint16(ti.Len()))
	binary.LittleEndian.PutUint32(b[44:], uint32(hdr+len(target)))
	copy(b[48:], []byte{6, 1, 0x1d, 0x1c, 0, 0, 0, 15}) // version 6.1.7196, NTLMSSP_REVISION_W2K3
	b = append(b, target...)
	return append(b, ti.Bytes()...)
}

// authenticate checks an AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3, NTLMv2
// 3.3.2) and derives the session's keys (3.4.5).
func (c *sealConn) authenticate(m []byte, user, pass string) error {
	if len(m) < 64 || string(m[:8]) != "NTLMSSP\x00" || binary.LittleEndian.Uint32(m[8:]) != 3 {
		return errors.New("not an AUTHENTICATE message")
	}
	field := func(off int) ([]byte, error) {
		l := int(binary.LittleEndian.Uint16(m[off:]))
		o := int(binary.LittleEndian.Uint32(m[off+4:]))
		if o+l > len(m) {
			return nil, errors.New("field out of range")
		}
		return m[o : o+l], nil
	}
	nt, err := field(20)
	if err != nil || len(nt) < 24 {
		return errors.New("bad NtChallengeResponse")
	}
	dom, _ := field(28)
	usr, _ := field(36)
	ersk, _ := field(52)
	wantUser, wantDom := user, ""
	if d, u, ok := strings.Cut(user, `\`); ok {
		wantDom, wantUser = d, u
	}
	if !strings.EqualFold(fromUTF16le(usr), wantUser) {
		return fmt.Errorf("unknown user %q", fromUTF16le(usr))
	}
	h := md4.New()
	h.Write(utf16le(pass))
	ntowf := hmacMD5(h.Sum(nil), utf16le(strings.ToUpper(fromUTF16le(usr))+fromUTF16le(dom)))
	_ = wantDom
	proof := hmacMD5(ntowf, c.challenge, nt[16:])
	if !hmac.Equal(proof, nt[:16]) {
		return errors.New("wrong password")
	}
	sessionBaseKey := hmacMD5(ntowf, proof)
	exported := sessionBaseKey
	if c.flags&nlmpKeyExch != 0 {
		if len(ersk) != 16 {
			return errors.New("no EncryptedRandomSessionKey")
		}
		exported = make([]byte, 16)
		r, _ := rc4.NewCipher(sessionBaseKey)
		r.XORKeyStream(exported, ersk)
	}
	key := func(magic string) []byte {
		s := md5.Sum(append(append([]byte{}, exported...), magic+"\x00"...))
		return s[:]
	}
	c.inSign = key("session key to client-to-server signing key magic constant")
	c.outSign = key("session key to server-to-client signing key magic constant")
	c.inSeal, _ = rc4.NewCipher(key("session key to client-to-server sealing key magic constant"))
	c.outSeal, _ = rc4.NewCipher(key("session key to server-to-client sealing key magic constant"))
	c.inSeq, c.outSeq = 0, 0
	c.authed = true
	return nil
}

// unseal decrypts and verifies one client message (MS-NLMP 3.4.4.2).
func (c *sealConn) unseal(sig, sealed []byte) ([]byte, error) {
	if len(sig) != 16 || binary.LittleEndian.Uint32(sig) != 1 {
		return nil, errors.New("bad signature")
	}
	msg := make([]byte, len(sealed))
	c.inSeal.XORKeyStream(msg, sealed)
	seq := make([]byte, 4)
	binary.LittleEndian.PutUint32(seq, c.inSeq)
	mac := hmacMD5(c.inSign, seq, msg)[:8]
	c.inSeal.XORKeyStream(mac, mac)
	if !bytes.Equal(mac, sig[4:12]) || !bytes.Equal(seq, sig[12:16]) {
		return nil, errors.New("signature check failed")
	}
	c.inSeq++
	return msg, nil
}

// seal encrypts and signs one server message.
func (c *sealConn) seal(msg []byte) (sig, sealed []byte) {
	sealed = make([]byte, len(msg))
	c.outSeal.XORKeyStream(sealed, msg)
	seq := make([]byte, 4)
	binary.LittleEndian.PutUint32(seq, c.outSeq)
	mac := hmacMD5(c.outSign, seq, msg)[:8]
	c.outSeal.XORKeyStream(mac, mac)
	c.outSeq++
	sig = append(append([]byte{1, 0, 0, 0}, mac...), seq...)
	return sig, sealed
}

func (s *sealServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := r.Context().Value(sealConnKey{}).(*sealConn)
	body, _ := io.ReadAll(r.Body)
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Negotiate ") {
		tok, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "Negotiate "))
		if err != nil || len(tok) < 12 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		switch binary.LittleEndian.Uint32(tok[8:]) {
		case 1:
			c.authed = false
			w.Header().Set("WWW-Authenticate", "Negotiate "+base64.StdEncoding.EncodeToString(c.challengeMessage()))
			w.WriteHeader(http.StatusUnauthorized)
			return
		case 3:
			if err := c.authenticate(tok, s.user, s.pass); err != nil {
				w.Header().Set("WWW-Authenticate", "Negotiate")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
	}
	if !c.authed {
		w.Header().Set("WWW-Authenticate", "Negotiate")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	ct := r.Header.Get("Content-Type")
	if len(body) == 0 {
		w.WriteHeader(http.StatusOK) // the priming POST
		return
	}
	if !strings.HasPrefix(ct, "multipart/encrypted") {
		s.mu.Lock()
		s.plain++
		s.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized) // AllowUnencrypted=false
		return
	}
	// MS-WSMV 2.2.9.1.1: boundary, OriginalContent with the length, then
	// the octet-stream part: 4-byte signature length, signature, sealed data.
	parts := bytes.Split(body, []byte(sealBoundary+"\r\n"))
	if len(parts) < 3 {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	payload := bytes.TrimPrefix(parts[2], []byte("\tContent-Type: application/octet-stream\r\n"))
	payload = bytes.TrimSuffix(payload, []byte(sealBoundary+"--\r\n"))
	if len(payload) < 4 {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	sl := int(binary.LittleEndian.Uint32(payload))
	if 4+sl > len(payload) {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	soapReq, err := c.unseal(payload[4:4+sl], payload[4+sl:])
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !bytes.Contains(parts[1], []byte("Length="+strconv.Itoa(len(soapReq)))) {
		http.Error(w, "length mismatch", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.sealed++
	s.mu.Unlock()
	inner := httptest.NewRecorder()
	ir := httptest.NewRequestWithContext(r.Context(), http.MethodPost, "/wsman", bytes.NewReader(soapReq))
	ir.SetBasicAuth(s.f.user, s.f.pass)
	s.f.ServeHTTP(inner, ir)
	out := inner.Body.Bytes()
	sig, sealed := c.seal(out)
	var resp bytes.Buffer
	resp.WriteString(sealBoundary + "\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n")
	fmt.Fprintf(&resp, "\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=%d\r\n", len(out))
	resp.WriteString(sealBoundary + "\r\n\tContent-Type: application/octet-stream\r\n")
	binary.Write(&resp, binary.LittleEndian, uint32(len(sig)))
	resp.Write(sig)
	resp.Write(sealed)
	resp.WriteString(sealBoundary + "--\r\n")
	w.Header().Set("Content-Type", `multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"`)
	w.WriteHeader(inner.Code)
	w.Write(resp.Bytes())
}

func startSealServer(t *testing.T, f *fakeWSMan) (*sealServer, WinRMConfig) {
	t.Helper()
	s := &sealServer{f: f, user: `CORP\admin`, pass: "Seal-Me-123"}
	srv := httptest.NewUnstartedServer(s)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, sealConnKey{}, &sealConn{})
	}
	srv.Start()
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return s, WinRMConfig{Host: host, Port: p, Auth: AuthNTLM, User: s.user, Password: s.pass, OperationTimeout: 5 * time.Second}
}

func TestRunnerNTLMMessageEncryption(t *testing.T) {
	f := newFake()
	f.script = func(string, map[string]string) ([]psframe.Record, int, string) {
		return EncodeHostInfo(sampleHost), 0, ""
	}
	s, cfg := startSealServer(t, f)
	r, warns := newRunner(t, cfg)
	if len(warns) != 0 {
		t.Errorf("warnings %q", warns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	info, _, err := Detect(ctx, r)
	if err != nil {
		t.Fatalf("Detect over NTLM-sealed HTTP: %v", err)
	}
	if info.ComputerName != sampleHost.ComputerName {
		t.Errorf("info = %+v", info)
	}
	// Idle sessions dropped: the next run authenticates new connections.
	r.Close()
	if _, _, err := Detect(ctx, r); err != nil {
		t.Fatalf("Detect after Close: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sealed < 5 || s.plain != 0 {
		t.Errorf("%d sealed and %d plain SOAP requests; want every one sealed", s.sealed, s.plain)
	}
}

func TestRunnerNTLMMessageEncryptionWrongPassword(t *testing.T) {
	f := newFake()
	s, cfg := startSealServer(t, f)
	cfg.Password = "wrong"
	r, _ := newRunner(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := r.Run(ctx, DetectScript, nil)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	_ = s
}

// sealPair runs an NTLM handshake between bodgit's client and the test
// peer in memory and returns both ends of the security context.
func sealPair(t testing.TB) (*sealConn, *ntlmssp.SecuritySession) {
	t.Helper()
	nc, err := ntlmssp.NewClient(ntlmssp.SetUserInfo("admin", "pw"), ntlmssp.SetDomain("CORP"), ntlmssp.SetVersion(ntlmssp.DefaultVersion()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Authenticate(nil, nil); err != nil {
		t.Fatal(err)
	}
	sc := &sealConn{}
	am, err := nc.Authenticate(sc.challengeMessage(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.authenticate(am, `CORP\admin`, "pw"); err != nil {
		t.Fatal(err)
	}
	return sc, nc.SecuritySession()
}

func TestSealRoundTrip(t *testing.T) {
	sc, sec := sealPair(t)
	for i, msg := range []string{"<s:Envelope>one</s:Envelope>", "", strings.Repeat("x", 70000)} {
		// client → server
		wire, err := sealMessage(sec, []byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		parts := bytes.Split(wire, []byte(sealBoundary+"\r\n"))
		payload := bytes.TrimSuffix(bytes.TrimPrefix(parts[2], []byte("\tContent-Type: application/octet-stream\r\n")), []byte(sealBoundary+"--\r\n"))
		got, err := sc.unseal(payload[4:20], payload[20:])
		if err != nil || string(got) != msg {
			t.Fatalf("message %d: peer unsealed %q, %v", i, got, err)
		}
		// server → client
		sig, sealed := sc.seal([]byte(msg))
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s\r\n\tContent-Type: %s\r\n\tOriginalContent: type=%s;Length=%d\r\n%s\r\n\tContent-Type: application/octet-stream\r\n", sealBoundary, sealProtocol, soapCT, len(msg), sealBoundary)
		binary.Write(&b, binary.LittleEndian, uint32(len(sig)))
		b.Write(sig)
		b.Write(sealed)
		b.WriteString(sealBoundary + "--\r\n")
		back, err := unsealMessage(sec, b.Bytes())
		if err != nil || string(back) != msg {
			t.Fatalf("message %d: client unsealed %q, %v", i, back, err)
		}
	}
	// A replayed or tampered answer fails the signature check.
	sig, sealed := sc.seal([]byte("hello"))
	sealed[0] ^= 1
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\r\n\tContent-Type: %s\r\n\tOriginalContent: type=%s;Length=5\r\n%s\r\n\tContent-Type: application/octet-stream\r\n", sealBoundary, sealProtocol, soapCT, sealBoundary)
	binary.Write(&b, binary.LittleEndian, uint32(len(sig)))
	b.Write(sig)
	b.Write(sealed)
	b.WriteString(sealBoundary + "--\r\n")
	if _, err := unsealMessage(sec, b.Bytes()); !errors.Is(err, errSealFormat) {
		t.Errorf("tampered answer: %v", err)
	}
}

func FuzzUnsealMessage(f *testing.F) {
	f.Add([]byte(sealBoundary + "\r\n\tContent-Type: x\r\n\tOriginalContent: type=a;Length=3\r\n" + sealBoundary + "\r\n\tContent-Type: application/octet-stream\r\n\x10\x00\x00\x00" + strings.Repeat("A", 19) + sealBoundary + "--\r\n"))
	f.Add([]byte(sealBoundary + "\r\n" + sealBoundary + "\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, sec := sealPair(t)
		unsealMessage(sec, b) // must not panic
	})
}
