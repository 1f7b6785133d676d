package audit

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
)

// authMechanism is the SASL mechanism of each bogus AUTH exchange.
var authMechanism = map[string]string{
	AuthNTLMNull:    "NTLM",
	AuthLogin:       "LOGIN",
	AuthPlain:       "PLAIN",
	AuthCRAMGarbage: "CRAM-MD5",
}

// offersAuth reports whether the EHLO reply lists mech for AUTH (RFC
// 4954 §3), in the standard form or the old "AUTH=" one.
func (c *client) offersAuth(mech string) bool {
	for k, v := range c.ext {
		if k != "AUTH" && !strings.HasPrefix(k, "AUTH=") {
			continue
		}
		list := v
		if rest, ok := strings.CutPrefix(k, "AUTH="); ok {
			list = rest + " " + v
		}
		for _, m := range strings.Fields(strings.ToUpper(list)) {
			if m == mech {
				return true
			}
		}
	}
	return false
}

// authStep runs t's bogus AUTH exchange on c (§8 test 41) before its MAIL
// and RCPT, and records the server's last answer in t.res.AuthReply. The
// test then goes on whatever the answer: relaying after a login that
// must fail is the finding. The test is skipped when the server does not
// offer the mechanism.
func (er *epRun) authStep(c *client, t *testRun) {
	mech := authMechanism[t.auth]
	if !c.offersAuth(mech) {
		offered := "no AUTH"
		if v, ok := c.ext["AUTH"]; ok {
			offered = "AUTH " + v
		}
		t.done, t.res.Outcome = true, OutcomeSkipped
		t.res.Reason = "the server does not offer AUTH " + mech + " here (EHLO: " + offered + ")"
		return
	}
	rep, err := c.bogusAuth(t.auth)
	if rep != nil {
		t.res.AuthReply = rep
	}
	if err != nil || rep == nil {
		return // the connection ended: runBatch retries or reports it
	}
	if rep.Code == 235 {
		c.log("*", "the server accepted an AUTH that must fail (235): it treats a failed or empty login as a login")
	}
}

// bogusAuth sends one AUTH exchange that must fail, one command at a time
// (RFC 4954 §4: AUTH is not pipelined), and returns the server's final
// answer. The account is made up (relaylock-<random>), never a real one.
func (c *client) bogusAuth(kind string) (*Reply, error) {
	user, pass := "relaylock-"+NewToken(), NewToken()
	b64 := base64.StdEncoding.EncodeToString
	var steps []string
	switch kind {
	case AuthNTLMNull:
		steps = []string{"AUTH NTLM " + b64(ntlmNegotiate()), b64(ntlmNullAuthenticate())}
	case AuthLogin:
		steps = []string{"AUTH LOGIN", b64([]byte(user)), b64([]byte(pass))}
	case AuthPlain:
		steps = []string{"AUTH PLAIN " + b64([]byte("\x00"+user+"\x00"+pass))}
	case AuthCRAMGarbage:
		steps = []string{"AUTH CRAM-MD5", b64([]byte(user + " " + strings.Repeat("0", 32)))}
	}
	var rep *Reply
	for i, step := range steps {
		var err error
		if rep, err = c.cmd(step); err != nil {
			return rep, err
		}
		if rep.Code != 334 {
			return rep, nil // the final answer (235, 535, 501, 504, ...)
		}
		if kind == AuthNTLMNull && i == 0 && !ntlmIsChallenge(rep) {
			break // not an NTLM CHALLENGE: cancel below
		}
	}
	if rep != nil && rep.Code == 334 {
		// The server wants more than the exchange has (or sent nonsense):
		// cancel (RFC 4954 §4), which ends in 501.
		return c.cmd("*")
	}
	return rep, nil
}

// NTLM flags for the null-session exchange (MS-NLMP 2.2.2.5).
const (
	ntlmUnicode      = 0x00000001
	ntlmOEM          = 0x00000002
	ntlmRequestTgt   = 0x00000004
	ntlmNTLM         = 0x00000200
	ntlmAnonymous    = 0x00000800
	ntlmAlwaysSign   = 0x00008000
	ntlmSignatureLen = 8
)

var ntlmSignature = []byte("NTLMSSP\x00")

// ntlmNegotiate is an NTLM NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1) with no
// domain and no workstation.
func ntlmNegotiate() []byte {
	b := make([]byte, 32)
	copy(b, ntlmSignature)
	binary.LittleEndian.PutUint32(b[8:], 1)
	binary.LittleEndian.PutUint32(b[12:], ntlmUnicode|ntlmOEM|ntlmRequestTgt|ntlmNTLM|ntlmAlwaysSign)
	return b
}

// ntlmNullAuthenticate is an anonymous AUTHENTICATE_MESSAGE (MS-NLMP
// 2.2.1.3, 3.1.5.1.2): no user, no domain, an empty NT response and a
// one-byte zero LM response, NTLMSSP_ANONYMOUS set - a null session.
func ntlmNullAuthenticate() []byte {
	const header = 64
	b := make([]byte, header+1) // the payload is the LM response Z(1)
	copy(b, ntlmSignature)
	binary.LittleEndian.PutUint32(b[8:], 3)
	field := func(at, length, offset int) {
		binary.LittleEndian.PutUint16(b[at:], uint16(length))
		binary.LittleEndian.PutUint16(b[at+2:], uint16(length))
		binary.LittleEndian.PutUint32(b[at+4:], uint32(offset))
	}
	field(12, 1, header)   // LmChallengeResponse
	field(20, 0, header+1) // NtChallengeResponse
	field(28, 0, header+1) // DomainName
	field(36, 0, header+1) // UserName
	field(44, 0, header+1) // Workstation
	field(52, 0, header+1) // EncryptedRandomSessionKey
	binary.LittleEndian.PutUint32(b[60:], ntlmUnicode|ntlmRequestTgt|ntlmNTLM|ntlmAnonymous|ntlmAlwaysSign)
	return b
}

// ntlmIsChallenge reports whether a 334 carries an NTLM CHALLENGE_MESSAGE.
func ntlmIsChallenge(rep *Reply) bool {
	if len(rep.Lines) != 1 {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rep.Lines[0]))
	return err == nil && len(raw) >= 32 && string(raw[:ntlmSignatureLen]) == string(ntlmSignature) &&
		binary.LittleEndian.Uint32(raw[8:]) == 2
}
