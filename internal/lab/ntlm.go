package lab

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rc4"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"

	//lint:ignore SA1019 NTOWF is MD4 by definition (MS-NLMP 3.3.2); NTLM cannot work without it
	"golang.org/x/crypto/md4"
)

// This file is a server-side NTLMv2 acceptor, enough for HTTP
// "Negotiate"/"NTLM" authentication as WinRM does it (MS-NLMP; docs/winrm.md
// §3.2). It speaks raw NTLMSSP tokens, which is what go-ntlmssp (the
// masterzen/winrm ClientNTLM transport), bodgit/ntlmssp (relaylock's
// sealing transport) and requests-ntlm (pywinrm) send; SPNEGO-wrapped
// tokens (Windows clients, Kerberos fallback) are refused. Besides
// verifying the NTLMv2 response it derives the session key (MS-NLMP
// 3.3.2, 3.2.5.1.2), from which ntlmseal.go derives the signing and
// sealing keys of NTLM message encryption (MS-WSMV 2.2.9.1).

var ntlmSignature = []byte("NTLMSSP\x00")

// NEGOTIATE flags (MS-NLMP 2.2.2.5).
const (
	ntlmNegotiateUnicode        = 0x00000001
	ntlmRequestTarget           = 0x00000004
	ntlmNegotiateSign           = 0x00000010
	ntlmNegotiateSeal           = 0x00000020
	ntlmNegotiateLMKey          = 0x00000080
	ntlmNegotiateNTLM           = 0x00000200
	ntlmNegotiateAlwaysSign     = 0x00008000
	ntlmTargetTypeDomain        = 0x00010000
	ntlmNegotiateExtendedSecure = 0x00080000
	ntlmNegotiateTargetInfo     = 0x00800000
	ntlmNegotiateVersion        = 0x02000000
	ntlmNegotiate128            = 0x20000000
	ntlmNegotiateKeyExch        = 0x40000000
	ntlmNegotiate56             = 0x80000000
)

// challengeBaseFlags are in every CHALLENGE we send, whatever the client
// asked for: Unicode strings, the target name and type, the target info
// (NTLMv2 needs it), NTLM and our version.
const challengeBaseFlags = ntlmNegotiateUnicode | ntlmRequestTarget | ntlmNegotiateNTLM |
	ntlmTargetTypeDomain | ntlmNegotiateTargetInfo | ntlmNegotiateVersion

// challengeEchoFlags are the options the lab supports and echoes only
// when the client's NEGOTIATE asks for them, as Windows does (MS-NLMP
// 3.2.5.1.1: the server's flags are the client's requests it supports).
// So a client that does not ask for NEGOTIATE_KEY_EXCH never sees it:
// go-ntlmssp (masterzen's ClientNTLM) refuses a challenge carrying
// KEY_EXCH or LM_KEY (docs/winrm.md §3.2), and asks for neither. LM_KEY (the
// NTLMv1 session key) is never echoed. SIGN, SEAL and KEY_EXCH are
// echoed only when sealing is offered at all (challengeFlags).
const challengeEchoFlags = ntlmNegotiateAlwaysSign | ntlmNegotiateExtendedSecure |
	ntlmNegotiate128 | ntlmNegotiate56 | ntlmNegotiateSign | ntlmNegotiateSeal | ntlmNegotiateKeyExch

// challengeFlags returns the flags of the CHALLENGE answering a NEGOTIATE
// that asked for negotiate. With sealing false (a host that cannot seal,
// WSManConfig.DisableSealing) SIGN, SEAL and KEY_EXCH are never echoed.
// Signing and sealing are offered only with extended session security
// (the NTLMv2 form, MS-NLMP 3.4.4.2): every client relaylock meets asks
// for it, and the lab does not implement the NTLMv1 (CRC32) signature.
func challengeFlags(negotiate uint32, sealing bool) uint32 {
	echo := uint32(challengeEchoFlags)
	if !sealing || negotiate&ntlmNegotiateExtendedSecure == 0 {
		echo &^= ntlmNegotiateSign | ntlmNegotiateSeal | ntlmNegotiateKeyExch
	}
	return challengeBaseFlags | negotiate&echo
}

// ntlmNegotiateFlags returns the NegotiateFlags of a NEGOTIATE message
// (MS-NLMP 2.2.1.1).
func ntlmNegotiateFlags(msg []byte) (uint32, error) {
	t, err := ntlmMessageType(msg)
	if err != nil {
		return 0, err
	}
	if t != 1 || len(msg) < 16 {
		return 0, fmt.Errorf("%w: not a NEGOTIATE message", errNTLM)
	}
	return binary.LittleEndian.Uint32(msg[12:]), nil
}

// AV pair ids (MS-NLMP 2.2.2.1).
const (
	avEOL             = 0
	avNbComputerName  = 1
	avNbDomainName    = 2
	avDNSComputerName = 3
	avDNSDomainName   = 4
)

var errNTLM = errors.New("ntlm")

// ntlmMessageType returns the type (1, 2 or 3) of an NTLMSSP token.
func ntlmMessageType(tok []byte) (uint32, error) {
	if len(tok) < 12 || !bytes.Equal(tok[:8], ntlmSignature) {
		return 0, fmt.Errorf("%w: not an NTLMSSP token", errNTLM)
	}
	return binary.LittleEndian.Uint32(tok[8:12]), nil
}

// ntlmChallenge builds a CHALLENGE message (MS-NLMP 2.2.1.2) with flags
// for the given NetBIOS domain and computer names and returns it with the
// random server challenge it carries.
func ntlmChallenge(domain, computer, dnsDomain string, flags uint32) (msg []byte, serverChallenge [8]byte, err error) {
	if _, err := rand.Read(serverChallenge[:]); err != nil {
		return nil, serverChallenge, err
	}
	target := utf16le(domain)
	var info bytes.Buffer
	av := func(id uint16, v string) {
		b := utf16le(v)
		_ = binary.Write(&info, binary.LittleEndian, id)
		_ = binary.Write(&info, binary.LittleEndian, uint16(len(b)))
		info.Write(b)
	}
	av(avNbDomainName, domain)
	av(avNbComputerName, computer)
	av(avDNSDomainName, dnsDomain)
	av(avDNSComputerName, strings.ToLower(computer)+"."+dnsDomain)
	_ = binary.Write(&info, binary.LittleEndian, uint32(avEOL)) // MsvAvEOL, length 0
	const headerLen = 56
	b := make([]byte, headerLen, headerLen+len(target)+info.Len())
	copy(b, ntlmSignature)
	binary.LittleEndian.PutUint32(b[8:], 2)
	putField(b[12:], len(target), headerLen)
	binary.LittleEndian.PutUint32(b[20:], flags)
	copy(b[24:32], serverChallenge[:])
	putField(b[40:], info.Len(), headerLen+len(target))
	// Version (MS-NLMP 2.2.2.10): 10.0 build 17763 (Server 2019), NTLMSSP revision 15.
	b[48], b[49] = 10, 0
	binary.LittleEndian.PutUint16(b[50:], 17763)
	b[55] = 15
	b = append(b, target...)
	b = append(b, info.Bytes()...)
	return b, serverChallenge, nil
}

func putField(b []byte, n, off int) {
	binary.LittleEndian.PutUint16(b[0:], uint16(n))
	binary.LittleEndian.PutUint16(b[2:], uint16(n))
	binary.LittleEndian.PutUint32(b[4:], uint32(off))
}

func field(msg []byte, at int) ([]byte, error) {
	if len(msg) < at+8 {
		return nil, fmt.Errorf("%w: message too short", errNTLM)
	}
	n := int(binary.LittleEndian.Uint16(msg[at:]))
	off := int(binary.LittleEndian.Uint32(msg[at+4:]))
	if off < 0 || n < 0 || off+n > len(msg) {
		return nil, fmt.Errorf("%w: field out of range", errNTLM)
	}
	return msg[off : off+n], nil
}

// ntlmAuthenticate is the part of an AUTHENTICATE message (MS-NLMP
// 2.2.1.3) the acceptor needs.
type ntlmAuthenticate struct {
	Domain, User string
	NTResponse   []byte
	// Flags are the NegotiateFlags the client settled on.
	Flags uint32
	// EncryptedRandomSessionKey is set with NEGOTIATE_KEY_EXCH.
	EncryptedRandomSessionKey []byte
}

func parseNTLMAuthenticate(msg []byte) (*ntlmAuthenticate, error) {
	t, err := ntlmMessageType(msg)
	if err != nil {
		return nil, err
	}
	if t != 3 || len(msg) < 64 {
		return nil, fmt.Errorf("%w: not an AUTHENTICATE message", errNTLM)
	}
	flags := binary.LittleEndian.Uint32(msg[60:])
	nt, err := field(msg, 20)
	if err != nil {
		return nil, err
	}
	dom, err := field(msg, 28)
	if err != nil {
		return nil, err
	}
	usr, err := field(msg, 36)
	if err != nil {
		return nil, err
	}
	key, err := field(msg, 52)
	if err != nil {
		return nil, err
	}
	a := &ntlmAuthenticate{NTResponse: nt, Flags: flags, EncryptedRandomSessionKey: key}
	if flags&ntlmNegotiateUnicode != 0 {
		a.Domain, a.User = fromUTF16le(dom), fromUTF16le(usr)
	} else {
		a.Domain, a.User = string(dom), string(usr)
	}
	return a, nil
}

// verifyNTLMv2 checks an NTLMv2 response (MS-NLMP 3.3.2):
//
//	NTOWFv2    = HMAC_MD5(MD4(UTF16LE(password)), UTF16LE(UPPER(user) + domain))
//	NTProofStr = HMAC_MD5(NTOWFv2, ServerChallenge ‖ temp)
//
// where NtChallengeResponse = NTProofStr ‖ temp. The domain is the one the
// client put in the AUTHENTICATE message, which is what it hashed with.
// NTLMv1 (24-byte responses) is refused, as Windows does with the default
// LmCompatibilityLevel of Server 2008 and later.
func verifyNTLMv2(a *ntlmAuthenticate, password string, serverChallenge [8]byte) bool {
	_, ok := acceptNTLMv2(a, password, serverChallenge)
	return ok
}

// acceptNTLMv2 verifies the NTLMv2 response like verifyNTLMv2 and, when
// it is right, returns the SessionBaseKey (MS-NLMP 3.3.2):
//
//	SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr)
//
// with ResponseKeyNT = NTOWFv2. For NTLMv2 the KeyExchangeKey is the
// SessionBaseKey (MS-NLMP 3.4.5.1).
func acceptNTLMv2(a *ntlmAuthenticate, password string, serverChallenge [8]byte) (sessionBaseKey []byte, ok bool) {
	if len(a.NTResponse) <= 24 {
		return nil, false
	}
	h := md4.New()
	h.Write(utf16le(password))
	mac := hmac.New(md5.New, h.Sum(nil))
	mac.Write(utf16le(strings.ToUpper(a.User) + a.Domain))
	ntowf := mac.Sum(nil)
	mac = hmac.New(md5.New, ntowf)
	mac.Write(serverChallenge[:])
	mac.Write(a.NTResponse[16:])
	proof := mac.Sum(nil)
	if subtle.ConstantTimeCompare(proof, a.NTResponse[:16]) != 1 {
		return nil, false
	}
	mac = hmac.New(md5.New, ntowf)
	mac.Write(proof)
	return mac.Sum(nil), true
}

// exportedSessionKey is the key signing and sealing derive from (MS-NLMP
// 3.2.5.1.2): with NEGOTIATE_KEY_EXCH the client chose it at random and
// sent it RC4-encrypted with the KeyExchangeKey,
//
//	ExportedSessionKey = RC4K(KeyExchangeKey, EncryptedRandomSessionKey)
//
// otherwise it is the KeyExchangeKey itself.
func exportedSessionKey(flags uint32, keyExchangeKey, encryptedRandomSessionKey []byte) ([]byte, error) {
	if flags&ntlmNegotiateKeyExch == 0 {
		return keyExchangeKey, nil
	}
	if len(encryptedRandomSessionKey) != 16 {
		return nil, fmt.Errorf("%w: KEY_EXCH with a %d-byte EncryptedRandomSessionKey", errNTLM, len(encryptedRandomSessionKey))
	}
	c, err := rc4.NewCipher(keyExchangeKey)
	if err != nil {
		return nil, err
	}
	k := make([]byte, 16)
	c.XORKeyStream(k, encryptedRandomSessionKey)
	return k, nil
}

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
