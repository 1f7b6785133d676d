package lab

// The WS-Man face as a Kerberos acceptor (RFC 4120 KRB_AP_REQ inside a
// GSS-API token, RFC 4121, either bare or wrapped in SPNEGO, RFC 4178),
// as a domain-joined Windows host's WinRM service is one for its
// HTTP/<fqdn> service principal. The ticket is checked with the
// service's keytab by gokrb5's AP-REQ verification (messages.APReq.Verify):
// it must decrypt with the key of the lab's SPN (a ticket for another
// SPN, or a keytab from before a re-key, fails), be current within the
// clock skew (an expired ticket fails), and its authenticator must
// decrypt with the ticket's session key, name the ticket's client and
// be within the skew of now. A replayed authenticator fails too
// (krbAcceptor.replayed). Any failure is a bare 401, as Windows answers
// it.
//
// The logon is a network logon. Unless the authenticator carries a
// delegated TGT (GSS_C_DELEG_FLAG with a KRB-CRED, RFC 4121 §4.1.1.1),
// the process it starts holds no network credentials: the second hop
// (secondhop.go) fails exactly as after NTLM. masterzen/winrm never asks
// for delegation (gokrb5 sets only the integrity and confidentiality
// flags), and the lab does not model the hop a delegated TGT would
// allow: a logon that brings one is recorded (KerberosLogon.Delegated)
// and treated like any other.
//
// No Kerberos message encryption is implemented (MS-WSMV 2.2.9.1.2):
// masterzen's Kerberos transport sends SOAP in clear text, so over plain
// HTTP the host's AllowUnencrypted decides (WSManConfig), as on Windows,
// and HTTPS carries it otherwise. Channel binding tokens are not
// checked, which is Windows' default CbtHardeningLevel (Relaxed).

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// KerberosConfig makes the WS-Man face accept Kerberos for one service
// principal.
type KerberosConfig struct {
	// Realm is the realm of the service and of the accepted account
	// (krbtest.DefaultRealm, "CORP.EXAMPLE", for the lab's domain).
	Realm string
	// SPN is the service principal without realm, "HTTP/<host fqdn>";
	// lab.Start defaults it to HTTP/<Lab.Hostname>.
	SPN string
	// Keytab is the service's keytab (MIT keytab file format).
	Keytab []byte
	// KeytabFor, when Keytab is nil, is asked by lab.Start for the SPN's
	// keytab once the host name is known (krbtest.KDC.ServiceKeytab).
	KeytabFor func(spn string) ([]byte, error)
	// MaxClockSkew is the tolerance for ticket times and the
	// authenticator's time (default 5 minutes, Windows' default).
	MaxClockSkew time.Duration
}

// KerberosLogon is one accepted Kerberos logon.
type KerberosLogon struct {
	Time   time.Time
	Client string // "name@REALM"
	SPN    string // the ticket's service principal, "HTTP/host@REALM"
	// GSSFlags are the flags of the authenticator's GSS checksum (RFC
	// 4121 §4.1.1.1): 1 delegation, 2 mutual, 16 confidentiality, 32
	// integrity, ...
	GSSFlags uint32
	// Delegated is set when the authenticator carried a forwarded TGT
	// (GSS_C_DELEG_FLAG and a KRB-CRED): the only Kerberos logon that
	// holds network credentials.
	Delegated bool
	// SPNEGO is set when the token came wrapped in SPNEGO (masterzen,
	// gokrb5), unset for a bare Kerberos token (MIT GSSAPI through
	// pykerberos).
	SPNEGO bool
	// Mutual is set when the client asked for mutual authentication and
	// got an AP-REP.
	Mutual bool
}

// ErrKerberosConfig is returned for an unusable KerberosConfig.
var ErrKerberosConfig = errors.New("lab: bad Kerberos configuration")

// krbAcceptor is the parsed KerberosConfig.
type krbAcceptor struct {
	realm string
	spn   types.PrincipalName
	kt    *keytab.Keytab
	skew  time.Duration

	mu   sync.Mutex
	seen map[[32]byte]time.Time // replay cache: authenticator ciphertext hash → when seen
}

// replayed reports whether this authenticator was presented before
// within the skew, and remembers it. The cache is keyed by a hash of the
// authenticator's ciphertext, as MIT's has been since krb5 1.18, not by
// client and time as RFC 4120 §3.2.3 first described (and gokrb5's
// service cache does): masterzen/winrm posts a Send and a Receive
// concurrently, each with a new authenticator, and two of them can carry
// the same microsecond. Whether Windows keys its replay detection the
// same way is not verified here.
func (a *krbAcceptor) replayed(cipher []byte) bool {
	h := sha256.Sum256(cipher)
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen == nil {
		a.seen = map[[32]byte]time.Time{}
	}
	if t, ok := a.seen[h]; ok && now.Sub(t) <= 2*a.skew {
		return true
	}
	if len(a.seen) >= 4096 {
		for k, t := range a.seen {
			if now.Sub(t) > 2*a.skew {
				delete(a.seen, k)
			}
		}
	}
	a.seen[h] = now
	return false
}

func newKrbAcceptor(c *KerberosConfig) (*krbAcceptor, error) {
	if c == nil {
		return nil, nil
	}
	if c.Realm == "" || c.SPN == "" || len(c.Keytab) == 0 {
		return nil, fmt.Errorf("%w: realm, SPN and keytab are required", ErrKerberosConfig)
	}
	kt := keytab.New()
	if err := kt.Unmarshal(c.Keytab); err != nil {
		return nil, fmt.Errorf("%w: keytab: %w", ErrKerberosConfig, err)
	}
	spn, _ := types.ParseSPNString(c.SPN)
	if len(spn.NameString) != 2 {
		return nil, fmt.Errorf("%w: SPN %q is not service/host", ErrKerberosConfig, c.SPN)
	}
	skew := c.MaxClockSkew
	if skew <= 0 {
		skew = 5 * time.Minute
	}
	return &krbAcceptor{realm: c.Realm, spn: spn, kt: kt, skew: skew}, nil
}

// KerberosLogons returns the Kerberos logons accepted so far, in order
// (the most recent 2000).
func (w *WSMan) KerberosLogons() []KerberosLogon {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]KerberosLogon(nil), w.krbLogons...)
}

// isKerberosToken reports whether an Authorization token is a GSS-API
// initial context token (a Kerberos or SPNEGO one) rather than NTLM.
func isKerberosToken(raw []byte) bool {
	return len(raw) > 2 && raw[0] == 0x60
}

// Kerberos refusals, in Call.Fault.
const (
	faultKrbToken  = "kerberos-bad-token"  // not a Kerberos AP-REQ
	faultKrbSPN    = "kerberos-wrong-spn"  // a ticket for another service or realm
	faultKrbTicket = "kerberos-bad-ticket" // the keytab does not decrypt it, or the authenticator is bad
	faultKrbExpire = "kerberos-expired"    // the ticket's end time has passed
	faultKrbSkew   = "kerberos-clock-skew" // authenticator time outside the skew
	faultKrbReplay = "kerberos-replay"     // an authenticator seen before
	faultKrbUser   = "kerberos-unknown-user"
)

// acceptKerberos authenticates a request that carries a Kerberos token
// (Negotiate or Kerberos scheme). It writes the 401 itself and returns
// false when the request may not go on.
func (w *WSMan) acceptKerberos(rw http.ResponseWriter, scheme string, raw []byte, cs *connState) bool {
	refuse := func(fault string) bool {
		cs.reset()
		w.record(Call{Status: http.StatusUnauthorized, Fault: fault})
		w.unauthorized(rw, "")
		return false
	}
	apreq, wrapped, err := parseAPReq(raw)
	if err != nil {
		return refuse(faultKrbToken)
	}
	a := w.krb
	if !strings.EqualFold(apreq.Ticket.Realm, a.realm) || len(apreq.Ticket.SName.NameString) != 2 ||
		!strings.EqualFold(apreq.Ticket.SName.NameString[0], a.spn.NameString[0]) ||
		!strings.EqualFold(apreq.Ticket.SName.NameString[1], a.spn.NameString[1]) {
		return refuse(faultKrbSPN)
	}
	// The ticket: decrypted with the SPN's key from the keytab, current
	// within the skew, the authenticator decrypted with its session key,
	// naming its client, and within the skew of now.
	ok, err := apreq.Verify(a.kt, a.skew, types.HostAddress{}, &a.spn)
	if err != nil || !ok {
		return refuse(krbFault(err))
	}
	if a.replayed(apreq.EncryptedAuthenticator.Cipher) {
		return refuse(faultKrbReplay)
	}
	cname := apreq.Ticket.DecryptedEncPart.CName.PrincipalNameString()
	crealm := apreq.Ticket.DecryptedEncPart.CRealm
	if !w.kerberosUserMatches(cname, crealm) {
		return refuse(faultKrbUser)
	}
	logon := KerberosLogon{Time: time.Now(), Client: cname + "@" + crealm,
		SPN: apreq.Ticket.SName.PrincipalNameString() + "@" + apreq.Ticket.Realm, SPNEGO: wrapped}
	logon.GSSFlags, logon.Delegated = gssChecksumFlags(apreq.Authenticator.Cksum)
	if types.IsFlagSet(&apreq.APOptions, flags.APOptionMutualRequired) || logon.GSSFlags&gssapi.ContextFlagMutual != 0 {
		tok, err := apRepToken(apreq, wrapped)
		if err != nil {
			return refuse(faultKrbTicket)
		}
		rw.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(tok))
		logon.Mutual = true
	}
	w.mu.Lock()
	w.krbLogons = appendBounded(w.krbLogons, logon, maxRuns)
	w.mu.Unlock()
	// HTTP.sys keeps a connection authenticated once Kerberos succeeded
	// on it; there is no NTLM session to seal with.
	cs.reset()
	cs.authenticated = true
	return true
}

// parseAPReq takes the AP-REQ out of a GSS-API token: a bare Kerberos
// one (OID 1.2.840.113554.1.2.2, token ID 01 00) or an SPNEGO
// NegTokenInit whose first mechanism is Kerberos (also Microsoft's
// legacy OID) and whose mechToken is that Kerberos token.
func parseAPReq(raw []byte) (messages.APReq, bool, error) {
	var oid asn1.ObjectIdentifier
	rest, err := asn1.UnmarshalWithParams(raw, &oid, "application,explicit,tag:0")
	if err != nil {
		return messages.APReq{}, false, err
	}
	mech := raw
	wrapped := false
	switch {
	case oid.Equal(gssapi.OIDSPNEGO.OID()):
		init, nt, err := spnego.UnmarshalNegToken(rest)
		if err != nil || !init {
			return messages.APReq{}, true, errors.New("not a NegTokenInit")
		}
		ti := nt.(spnego.NegTokenInit)
		if len(ti.MechTypes) == 0 || !(ti.MechTypes[0].Equal(gssapi.OIDKRB5.OID()) || ti.MechTypes[0].Equal(gssapi.OIDMSLegacyKRB5.OID())) {
			return messages.APReq{}, true, errors.New("SPNEGO without Kerberos as the preferred mechanism")
		}
		mech, wrapped = ti.MechTokenBytes, true
	case oid.Equal(gssapi.OIDKRB5.OID()):
	default:
		return messages.APReq{}, false, fmt.Errorf("GSS-API mechanism %s", oid)
	}
	var kt spnego.KRB5Token
	if err := kt.Unmarshal(mech); err != nil {
		return messages.APReq{}, wrapped, err
	}
	if !kt.IsAPReq() {
		return messages.APReq{}, wrapped, errors.New("not an AP-REQ")
	}
	return kt.APReq, wrapped, nil
}

// krbFault names a verification failure by its Kerberos error code.
func krbFault(err error) string {
	var ke messages.KRBError
	if errors.As(err, &ke) {
		switch ke.ErrorCode {
		case errorcode.KRB_AP_ERR_TKT_EXPIRED:
			return faultKrbExpire
		case errorcode.KRB_AP_ERR_SKEW:
			return faultKrbSkew
		case errorcode.KRB_AP_ERR_REPEAT:
			return faultKrbReplay
		}
	}
	return faultKrbTicket
}

// kerberosUserMatches compares a ticket's client with the host's
// account. Kerberos logs on domain accounts only: a host whose account
// is local accepts no ticket.
func (w *WSMan) kerberosUserMatches(name, realm string) bool {
	if !isDomainAccount(w.cfg.User) || !strings.EqualFold(realm, w.krb.realm) {
		return false
	}
	want := w.cfg.User
	if _, n, ok := strings.Cut(want, `\`); ok {
		want = n
	} else if n, _, ok := strings.Cut(want, "@"); ok {
		want = n
	}
	return strings.EqualFold(name, want)
}

// gssChecksumFlags reads the flags of the authenticator's GSS checksum
// (type 0x8003, RFC 4121 §4.1.1): Lgth (4 bytes, 16), the channel
// binding hash (16), the flags (4, little endian), then, with
// GSS_C_DELEG_FLAG, DlgOpt (2, value 1), Dlgth (2) and a KRB-CRED.
func gssChecksumFlags(ck types.Checksum) (uint32, bool) {
	b := ck.Checksum
	if ck.CksumType != chksumtype.GSSAPI || len(b) < 24 {
		return 0, false
	}
	f := binary.LittleEndian.Uint32(b[20:24])
	if f&gssapi.ContextFlagDeleg == 0 || len(b) < 28 {
		return f, false
	}
	dlgOpt := binary.LittleEndian.Uint16(b[24:26])
	dlgth := int(binary.LittleEndian.Uint16(b[26:28]))
	if dlgOpt != 1 || dlgth == 0 || len(b) < 28+dlgth {
		return f, false
	}
	var cred messages.KRBCred
	return f, cred.Unmarshal(b[28:28+dlgth]) == nil && cred.MsgType == msgtype.KRB_CRED
}

// encAPRepPart is EncAPRepPart (RFC 4120 §5.5.2) without a subkey.
type encAPRepPart struct {
	CTime     time.Time `asn1:"generalized,explicit,tag:0"`
	Cusec     int       `asn1:"explicit,tag:1"`
	SeqNumber int64     `asn1:"explicit,tag:3"`
}

type apRep struct {
	PVNO    int                 `asn1:"explicit,tag:0"`
	MsgType int                 `asn1:"explicit,tag:1"`
	EncPart types.EncryptedData `asn1:"explicit,tag:2"`
}

// apRepToken is the acceptor's answer for mutual authentication: an
// AP-REP echoing the authenticator's time, encrypted in the ticket's
// session key (key usage 12), as a Kerberos GSS token (token ID 02 00),
// wrapped in an SPNEGO NegTokenResp (accept-completed) when the client
// used SPNEGO.
func apRepToken(req messages.APReq, spnegoWrap bool) ([]byte, error) {
	part, err := asn1.Marshal(encAPRepPart{CTime: req.Authenticator.CTime, Cusec: req.Authenticator.Cusec, SeqNumber: req.Authenticator.SeqNumber})
	if err != nil {
		return nil, err
	}
	part = asn1tools.AddASNAppTag(part, asnAppTag.EncAPRepPart)
	ed, err := crypto.GetEncryptedData(part, req.Ticket.DecryptedEncPart.Key, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		return nil, err
	}
	rep, err := asn1.Marshal(apRep{PVNO: 5, MsgType: msgtype.KRB_AP_REP, EncPart: ed})
	if err != nil {
		return nil, err
	}
	rep = asn1tools.AddASNAppTag(rep, asnAppTag.APREP)
	oid, err := asn1.Marshal(gssapi.OIDKRB5.OID())
	if err != nil {
		return nil, err
	}
	tok := asn1tools.AddASNAppTag(append(append(oid, 0x02, 0x00), rep...), 0)
	if !spnegoWrap {
		return tok, nil
	}
	resp := spnego.NegTokenResp{NegState: asn1.Enumerated(spnego.NegStateAcceptCompleted), SupportedMech: gssapi.OIDKRB5.OID(), ResponseToken: tok}
	return resp.Marshal()
}

// decodeToken is an Authorization token's bytes (nil when not base64).
func decodeToken(tok string) []byte {
	b, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		return nil
	}
	return b
}
