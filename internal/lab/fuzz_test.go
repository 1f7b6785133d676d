package lab

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzWSManRequest feeds arbitrary SOAP bodies to the WS-Man handler: it
// must never panic and must answer with a status a WinRM client knows.
func FuzzWSManRequest(f *testing.F) {
	f.Add(soapRequest(actionCreate, "", "PT5S", `<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams></rsp:Shell>`))
	f.Add(soapRequest(actionCommand, "0D1B5F4C-2A3E-4F60-8E51-7C1A2B3C4D5E", "PT5S", `<rsp:CommandLine><rsp:Command><![CDATA[echo x]]></rsp:Command><rsp:Arguments>y</rsp:Arguments></rsp:CommandLine>`))
	f.Add(soapRequest(actionSend, "X", "PT1S", `<rsp:Send><rsp:Stream Name="stdin" CommandId="Y" End="true">AAAA</rsp:Stream></rsp:Send>`))
	f.Add(soapRequest(actionReceive, "X", "PT0.01S", `<rsp:Receive><rsp:DesiredStream CommandId="Y">stdout stderr</rsp:DesiredStream></rsp:Receive>`))
	f.Add(soapRequest(actionSignal, "X", "PT1S", `<rsp:Signal CommandId="Y"><rsp:Code>`+signalCtrlC+`</rsp:Code></rsp:Signal>`))
	f.Add(`<env:Envelope xmlns:env="` + nsSOAP + `"><env:Header/><env:Body/></env:Envelope>`)
	f.Add("<")
	w := NewWSMan(&echoHost{}, WSManConfig{User: testUser, Password: testPass, AllowUnencrypted: true, MaxOperationTimeout: 10 * time.Millisecond, MaxShellsPerUser: 1 << 20})
	f.Cleanup(func() { _ = w.Close() })
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/wsman", strings.NewReader(body))
		req.SetBasicAuth(testUser, testPass)
		req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				buf := make([]byte, 1<<20)
				panic("stuck on " + strconv.Quote(body) + "\n" + string(buf[:runtime.Stack(buf, true)]))
			}
		}()
		w.ServeHTTP(rec, req)
		close(done)
		switch rec.Code {
		case http.StatusOK, http.StatusInternalServerError, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if body != "" && rec.Code != http.StatusRequestEntityTooLarge && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/soap+xml") {
			t.Fatalf("answer without the SOAP content type: %d", rec.Code)
		}
	})
}

// FuzzNTLMAuthenticate: a hostile AUTHENTICATE token never panics the
// acceptor and never authenticates.
func FuzzNTLMAuthenticate(f *testing.F) {
	f.Add([]byte("NTLMSSP\x00\x03\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, tok []byte) {
		a, err := parseNTLMAuthenticate(tok)
		if err != nil {
			return
		}
		if verifyNTLMv2(a, testPass, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}) {
			t.Fatalf("random token authenticated: %x", tok)
		}
	})
}
