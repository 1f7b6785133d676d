package lab

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
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
// "Negotiate"/"NTLM" authentication as WinRM does it (MS-NLMP; winrm.md
// §3.2). It speaks raw NTLMSSP tokens, which is what go-ntlmssp (the
// masterzen/winrm ClientNTLM transport) and requests-ntlm (pywinrm) send;
// SPNEGO-wrapped tokens (Windows clients, Kerberos fallback) are refused.
// It authenticates only: there is no session key, signing or sealing, so
// NTLM message encryption (MS-WSMV 2.2.9.1) is not available (see
// WSManConfig.AllowUnencrypted).

var ntlmSignature = []byte("NTLMSSP\x00")

// NEGOTIATE flags (MS-NLMP 2.2.2.5).
const (
	ntlmNegotiateUnicode        = 0x00000001
	ntlmRequestTarget           = 0x00000004
	ntlmNegotiateNTLM           = 0x00000200
	ntlmNegotiateAlwaysSign     = 0x00008000
	ntlmTargetTypeDomain        = 0x00010000
	ntlmNegotiateExtendedSecure = 0x00080000
	ntlmNegotiateTargetInfo     = 0x00800000
	ntlmNegotiateVersion        = 0x02000000
	ntlmNegotiate128            = 0x20000000
	ntlmNegotiate56             = 0x80000000
)

// challengeFlags are the flags of our CHALLENGE. NEGOTIATE_LM_KEY (0x80)
// and NEGOTIATE_KEY_EXCH (0x40000000) are deliberately absent: go-ntlmssp
// refuses a challenge that carries either (winrm.md §3.2).
const challengeFlags = ntlmNegotiateUnicode | ntlmRequestTarget | ntlmNegotiateNTLM |
	ntlmNegotiateAlwaysSign | ntlmTargetTypeDomain | ntlmNegotiateExtendedSecure |
	ntlmNegotiateTargetInfo | ntlmNegotiateVersion | ntlmNegotiate128 | ntlmNegotiate56

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

// ntlmChallenge builds a CHALLENGE message (MS-NLMP 2.2.1.2) for the
// given NetBIOS domain and computer names and returns it with the random
// server challenge it carries.
func ntlmChallenge(domain, computer, dnsDomain string) (msg []byte, serverChallenge [8]byte, err error) {
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
	binary.LittleEndian.PutUint32(b[20:], challengeFlags)
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
	a := &ntlmAuthenticate{NTResponse: nt}
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
	if len(a.NTResponse) <= 24 {
		return false
	}
	h := md4.New()
	h.Write(utf16le(password))
	mac := hmac.New(md5.New, h.Sum(nil))
	mac.Write(utf16le(strings.ToUpper(a.User) + a.Domain))
	ntowf := mac.Sum(nil)
	mac = hmac.New(md5.New, ntowf)
	mac.Write(serverChallenge[:])
	mac.Write(a.NTResponse[16:])
	return subtle.ConstantTimeCompare(mac.Sum(nil), a.NTResponse[:16]) == 1
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
