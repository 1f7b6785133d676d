package lab

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rc4"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// NTLM message encryption, the server side (MS-WSMV 2.2.9.1 "Encrypted
// Message Types"; the NTLM security context is MS-NLMP 3.4). A default
// Windows WinRM listener is plain HTTP with AllowUnencrypted=false: once a
// TCP connection has authenticated with NTLM, every SOAP message on it,
// both ways, travels sealed with that connection's NTLM session.
//
// The session is connection-oriented (NEGOTIATE_DATAGRAM is never
// negotiated): each direction has one RC4 handle that runs on from one
// message to the next, and a sequence number that counts messages from 0.
// A message is sealed as (MS-NLMP 3.4.3, 3.4.4.2, with extended session
// security):
//
//	SealedMessage = RC4(SealingHandle, Message)
//	Checksum      = HMAC_MD5(SigningKey, SeqNum ‖ Message)[0..7]
//	Checksum      = RC4(SealingHandle, Checksum)      (with NEGOTIATE_KEY_EXCH)
//	Signature     = Version (1) ‖ Checksum ‖ SeqNum   (16 bytes, little endian)
//
// and carried in a MIME body (MS-WSMV 2.2.9.1.1, framing as Windows and
// pywinrm write it; the blank after CRLF is a tab):
//
//	--Encrypted Boundary\r\n
//	\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n
//	\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=N\r\n
//	--Encrypted Boundary\r\n
//	\tContent-Type: application/octet-stream\r\n
//	<uint32 LE 16><Signature><SealedMessage: N bytes>
//	--Encrypted Boundary--\r\n
//
// multipart/x-multi-encrypted repeats the two parts once per chunk, each
// chunk sealed as a message of its own (MS-WSMV 2.2.9.1.2.1).
//
// The lab is strict: the part headers, the signature length (16), the
// declared Length (which RC4 preserves, so it also says where the sealed
// data ends) and the closing boundary must all be exact. A request that
// fails any check, or whose signature or sequence number is wrong, gets
// HTTP 400 and ends the connection's NTLM session: the connection is
// closed, as the RC4 streams of both sides can no longer be trusted to be
// in step. (Windows answers such a request with 400 or drops the
// connection; the lab always does both, so a client sees a definite
// refusal, never a processed request.)

const (
	sealProtocol  = "application/HTTP-SPNEGO-session-encrypted"
	sealBoundary  = "Encrypted Boundary"
	sealedCT      = `multipart/encrypted;protocol="` + sealProtocol + `";boundary="` + sealBoundary + `"`
	soapCT        = "application/soap+xml;charset=UTF-8"
	ntlmSigLength = 16
	// sealOverhead bounds the MIME framing around one sealed message, so
	// the body limit can allow for it on top of MaxEnvelopeSize.
	sealOverhead = 512
)

var (
	clientSigningMagic = []byte("session key to client-to-server signing key magic constant\x00")
	serverSigningMagic = []byte("session key to server-to-client signing key magic constant\x00")
	clientSealingMagic = []byte("session key to client-to-server sealing key magic constant\x00")
	serverSealingMagic = []byte("session key to server-to-client sealing key magic constant\x00")
)

// errSeal is the category of every refused sealed request.
var errSeal = errors.New("ntlm message encryption")

// ntlmSealing is the server side of one connection's NTLM session. It is
// not safe for concurrent use; connState.mu guards it.
type ntlmSealing struct {
	flags            uint32
	signIn, signOut  []byte      // client-to-server, server-to-client signing keys
	sealIn, sealOut  *rc4.Cipher // the connection-oriented RC4 handles
	seqIn, seqOut    uint32
	keyExchangeCheck bool // checksums are RC4-encrypted (NEGOTIATE_KEY_EXCH)
}

// signKey is SIGNKEY (MS-NLMP 3.4.5.2) with extended session security.
func signKey(exported, magic []byte) []byte {
	h := md5.New()
	h.Write(exported)
	h.Write(magic)
	return h.Sum(nil)
}

// sealKey is SEALKEY (MS-NLMP 3.4.5.3) with extended session security:
// the exported key is cut to 128, 56 or 40 bits as negotiated, then
// hashed with the magic constant.
func sealKey(flags uint32, exported, magic []byte) []byte {
	k := exported
	switch {
	case flags&ntlmNegotiate128 != 0:
	case flags&ntlmNegotiate56 != 0:
		k = exported[:7]
	default:
		k = exported[:5]
	}
	h := md5.New()
	h.Write(k)
	h.Write(magic)
	return h.Sum(nil)
}

// newServerSealing sets up the server's side of a session whose
// negotiated flags are flags, from the ExportedSessionKey. It returns nil
// when the flags do not allow sealing (no SEAL, or no extended session
// security, which the lab does not implement).
func newServerSealing(flags uint32, exported []byte) (*ntlmSealing, error) {
	if flags&ntlmNegotiateSeal == 0 || flags&ntlmNegotiateExtendedSecure == 0 {
		return nil, nil
	}
	if len(exported) != 16 {
		return nil, fmt.Errorf("%w: session key of %d bytes", errSeal, len(exported))
	}
	in, err := rc4.NewCipher(sealKey(flags, exported, clientSealingMagic))
	if err != nil {
		return nil, err
	}
	out, err := rc4.NewCipher(sealKey(flags, exported, serverSealingMagic))
	if err != nil {
		return nil, err
	}
	return &ntlmSealing{
		flags:            flags,
		signIn:           signKey(exported, clientSigningMagic),
		signOut:          signKey(exported, serverSigningMagic),
		sealIn:           in,
		sealOut:          out,
		keyExchangeCheck: flags&ntlmNegotiateKeyExch != 0,
	}, nil
}

func checksum(key []byte, seq uint32, msg []byte) []byte {
	mac := hmac.New(md5.New, key)
	var s [4]byte
	binary.LittleEndian.PutUint32(s[:], seq)
	mac.Write(s[:])
	mac.Write(msg)
	return mac.Sum(nil)[:8]
}

// unseal decrypts a message from the client and verifies its signature:
// version 1, the checksum and the expected sequence number. On success
// the incoming sequence number advances.
func (s *ntlmSealing) unseal(sealed, sig []byte) ([]byte, error) {
	if len(sig) != ntlmSigLength {
		return nil, fmt.Errorf("%w: signature of %d bytes", errSeal, len(sig))
	}
	msg := make([]byte, len(sealed))
	s.sealIn.XORKeyStream(msg, sealed)
	want := checksum(s.signIn, s.seqIn, msg)
	if s.keyExchangeCheck {
		s.sealIn.XORKeyStream(want, want)
	}
	if v := binary.LittleEndian.Uint32(sig); v != 1 {
		return nil, fmt.Errorf("%w: signature version %d", errSeal, v)
	}
	if subtle.ConstantTimeCompare(want, sig[4:12]) != 1 {
		return nil, fmt.Errorf("%w: bad signature", errSeal)
	}
	if got := binary.LittleEndian.Uint32(sig[12:]); got != s.seqIn {
		return nil, fmt.Errorf("%w: sequence number %d, expected %d", errSeal, got, s.seqIn)
	}
	s.seqIn++
	return msg, nil
}

// seal encrypts and signs a message to the client.
func (s *ntlmSealing) seal(msg []byte) (sealed, sig []byte) {
	sealed = make([]byte, len(msg))
	s.sealOut.XORKeyStream(sealed, msg)
	sum := checksum(s.signOut, s.seqOut, msg)
	if s.keyExchangeCheck {
		s.sealOut.XORKeyStream(sum, sum)
	}
	sig = make([]byte, ntlmSigLength)
	binary.LittleEndian.PutUint32(sig, 1)
	copy(sig[4:], sum)
	binary.LittleEndian.PutUint32(sig[12:], s.seqOut)
	s.seqOut++
	return sealed, sig
}

// sealedPart is one sealed message of an encrypted body.
type sealedPart struct {
	sig, sealed []byte
}

// parseEncrypted splits an MS-WSMV encrypted body into its sealed
// messages: exactly one for multipart/encrypted, one or more for
// multipart/x-multi-encrypted. It checks the framing only; unseal checks
// the cryptography.
func parseEncrypted(body []byte, multi bool) ([]sealedPart, error) {
	open := []byte("--" + sealBoundary + "\r\n")
	end := []byte("--" + sealBoundary + "--\r\n")
	var parts []sealedPart
	rest := body
	for {
		var ok bool
		if rest, ok = bytes.CutPrefix(rest, open); !ok {
			return nil, fmt.Errorf("%w: part %d does not start with the boundary", errSeal, len(parts)+1)
		}
		i := bytes.Index(rest, open)
		if i < 0 {
			return nil, fmt.Errorf("%w: part %d has no data part", errSeal, len(parts)+1)
		}
		n, err := parseSealHeader(rest[:i])
		if err != nil {
			return nil, fmt.Errorf("%w: part %d: %v", errSeal, len(parts)+1, err)
		}
		rest = rest[i+len(open):]
		if rest, ok = bytes.CutPrefix(rest, []byte("\tContent-Type: application/octet-stream\r\n")); !ok {
			return nil, fmt.Errorf("%w: part %d: the data part is not application/octet-stream", errSeal, len(parts)+1)
		}
		if len(rest) < 4 {
			return nil, fmt.Errorf("%w: part %d: truncated", errSeal, len(parts)+1)
		}
		if l := binary.LittleEndian.Uint32(rest); l != ntlmSigLength {
			return nil, fmt.Errorf("%w: part %d: signature length %d, want %d", errSeal, len(parts)+1, l, ntlmSigLength)
		}
		rest = rest[4:]
		if len(rest) < ntlmSigLength+n {
			return nil, fmt.Errorf("%w: part %d: %d bytes of sealed data, %d declared", errSeal, len(parts)+1, len(rest)-ntlmSigLength, n)
		}
		parts = append(parts, sealedPart{sig: rest[:ntlmSigLength], sealed: rest[ntlmSigLength : ntlmSigLength+n]})
		rest = rest[ntlmSigLength+n:]
		if bytes.Equal(rest, end) {
			return parts, nil
		}
		if !multi || !bytes.HasPrefix(rest, open) {
			return nil, fmt.Errorf("%w: part %d: the sealed data does not end where its Length says (or the closing boundary is missing)", errSeal, len(parts))
		}
	}
}

// parseSealHeader parses the first MIME part of a sealed message and
// returns the declared length of the SOAP message:
//
//	\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n
//	\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=N\r\n
func parseSealHeader(h []byte) (int, error) {
	lines := strings.Split(string(h), "\r\n")
	if len(lines) != 3 || lines[2] != "" {
		return 0, errors.New("the header part is not two CRLF-terminated lines")
	}
	ct, ok := strings.CutPrefix(lines[0], "\tContent-Type: ")
	if !ok || !strings.EqualFold(ct, sealProtocol) {
		return 0, fmt.Errorf("content type %q, want %s", lines[0], sealProtocol)
	}
	oc, ok := strings.CutPrefix(lines[1], "\tOriginalContent: ")
	if !ok {
		return 0, fmt.Errorf("%q is not OriginalContent", lines[1])
	}
	length := -1
	typ := ""
	for _, p := range strings.Split(oc, ";") {
		k, v, _ := strings.Cut(p, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "type":
			typ = strings.TrimSpace(v)
		case "length":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				return 0, fmt.Errorf("Length %q", v)
			}
			length = n
		}
	}
	if !strings.EqualFold(typ, "application/soap+xml") {
		return 0, fmt.Errorf("original content type %q, want application/soap+xml", typ)
	}
	if length < 0 {
		return 0, errors.New("no Length in OriginalContent")
	}
	return length, nil
}

// buildEncrypted frames one sealed SOAP message as a multipart/encrypted
// body.
func buildEncrypted(sig, sealed []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(sealed) + sealOverhead)
	b.WriteString("--" + sealBoundary + "\r\n")
	b.WriteString("\tContent-Type: " + sealProtocol + "\r\n")
	b.WriteString("\tOriginalContent: type=" + soapCT + ";Length=" + strconv.Itoa(len(sealed)) + "\r\n")
	b.WriteString("--" + sealBoundary + "\r\n")
	b.WriteString("\tContent-Type: application/octet-stream\r\n")
	var l [4]byte
	binary.LittleEndian.PutUint32(l[:], uint32(len(sig)))
	b.Write(l[:])
	b.Write(sig)
	b.Write(sealed)
	b.WriteString("--" + sealBoundary + "--\r\n")
	return b.Bytes()
}
