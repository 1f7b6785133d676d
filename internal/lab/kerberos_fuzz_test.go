package lab

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// FuzzKerberosToken feeds arbitrary Negotiate/Kerberos tokens to the
// acceptor: it must never panic and must answer 401 (no ticket can be
// valid without the service key).
func FuzzKerberosToken(f *testing.F) {
	kt := keytab.New()
	if err := kt.AddEntry("HTTP/ex1.corp.example", "CORP.EXAMPLE", "not-a-real-key", time.Now(), 1, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
		f.Fatal(err)
	}
	ktb, err := kt.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	krbOID, _ := asn1.Marshal(gssapi.OIDKRB5.OID())
	spnegoOID, _ := asn1.Marshal(gssapi.OIDSPNEGO.OID())
	f.Add([]byte{0x60, 0x03, 0x06, 0x01, 0x00})
	f.Add(append([]byte{0x60, byte(len(krbOID) + 4)}, append(append(krbOID, 0x01, 0x00), 0x6e, 0x00)...))
	f.Add(append([]byte{0x60, byte(len(spnegoOID) + 4)}, append(spnegoOID, 0xa0, 0x02, 0x30, 0x00)...))
	f.Add([]byte("NTLMSSP\x00\x01\x00\x00\x00"))
	w := NewWSMan(&echoHost{}, WSManConfig{User: `CORP\Administrator`, Password: testPass, MaxOperationTimeout: 10 * time.Millisecond,
		Kerberos: &KerberosConfig{Realm: "CORP.EXAMPLE", SPN: "HTTP/ex1.corp.example", Keytab: ktb}})
	f.Cleanup(func() { _ = w.Close() })
	if w.krb == nil {
		f.Fatal("Kerberos not configured")
	}
	f.Fuzz(func(t *testing.T, tok []byte) {
		for _, scheme := range []string{"Negotiate", "Kerberos"} {
			req := httptest.NewRequest("POST", "/wsman", strings.NewReader(""))
			req.Header.Set("Authorization", scheme+" "+base64.StdEncoding.EncodeToString(tok))
			req = req.WithContext(w.ConnContext(req.Context(), nil))
			rec := httptest.NewRecorder()
			w.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("%s %x: status %d, want 401", scheme, tok, rec.Code)
			}
		}
	})
}
