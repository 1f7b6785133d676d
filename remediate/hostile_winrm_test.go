package remediate

// Hostile WinRM hosts (issue 9): a host relaylock remediates may be
// compromised, or something on the path may answer in its place. Whatever
// it answers, WinRMRunner.Run returns a classified error within bounded
// time and memory, and never crashes the process.

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/heapwatch"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// hostileWSMan answers one action (matched by suffix, e.g. "/shell/Receive")
// with its own handler and passes everything else to the fake.
type hostileWSMan struct {
	*fakeWSMan
	action string
	answer func(w http.ResponseWriter, r *http.Request)
	hits   atomic.Int32
}

func (h *hostileWSMan) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.action != "" {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(h.action+"</a:Action>")) || bytes.Contains(body, []byte(h.action+"</Action>")) {
			if u, p, ok := r.BasicAuth(); ok && u == h.user && p == h.pass {
				h.hits.Add(1)
				h.answer(w, r)
				return
			}
		}
	}
	h.fakeWSMan.ServeHTTP(w, r)
}

func soapAnswer(status int, body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

const billionLaughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">` +
	`<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
	`<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">` +
	`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">` +
	`<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">` +
	`<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">` +
	`<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">` +
	`<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">` +
	`<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">` +
	`<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>`

func TestHostileWinRMHosts(t *testing.T) {
	receiveStream := func(payload string) string {
		return `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">` +
			`<s:Header><a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse</a:Action></s:Header>` +
			`<s:Body><rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="X">` + payload + `</rsp:Stream></rsp:ReceiveResponse></s:Body></s:Envelope>`
	}
	tests := []struct {
		name   string
		action string
		answer func(w http.ResponseWriter, r *http.Request)
		want   error
		text   string
	}{
		{"huge answer (64 MiB)", "/shell/Receive", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
			w.WriteHeader(200)
			chunk := bytes.Repeat([]byte("A"), 1<<20)
			for i := 0; i < 64; i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, ErrWinRM, "exceeds"},
		{"malformed XML on Receive (was a crash)", "/shell/Receive", soapAnswer(200, "<s:Envelope><s:Body><rsp:Rec"), ErrWinRM, "not XML"},
		{"empty 200 answer on Receive (was a crash)", "/shell/Receive", soapAnswer(200, ""), ErrWinRM, "not XML"},
		{"malformed XML on Create", "/transfer/Create", soapAnswer(200, "<<<>>>"), ErrWinRM, "not XML"},
		{"billion laughs on Receive", "/shell/Receive", soapAnswer(200, billionLaughs+`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&lol9;</s:Body></s:Envelope>`), ErrWinRM, "not XML"},
		{"billion laughs in a 500 fault", "/shell/Command", soapAnswer(500, billionLaughs+`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Reason><s:Text>&lol9;</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>`), ErrWinRM, "HTTP 500"},
		{"wrong content type", "/shell/Command", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(200)
			io.WriteString(w, "<html><body>Please log in to the proxy</body></html>")
		}, ErrWinRM, `content type "text/html"`},
		{"500 without a SOAP body", "/shell/Send", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		}, ErrWinRM, "HTTP 500"},
		{"500 SOAP fault on Receive", "/shell/Receive", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
			w.WriteHeader(500)
			fmt.Fprintf(w, nsHeader, "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", 1, "x",
				`<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode></s:Code><s:Reason><s:Text>The WS-Management service cannot process the request.</s:Text></s:Reason></s:Fault>`)
		}, nil, "cannot process the request"},
		{"Receive streaming output forever", "/shell/Receive", func(w http.ResponseWriter, r *http.Request) {
			// Every Receive carries 256 KiB more stdout and the command
			// never reaches Done.
			soapAnswer(200, receiveStream(strings.Repeat("QUFB", 1<<16)))(w, r)
		}, psframe.ErrFrame, "cut at 1048576 bytes"},
		{"Receive body that never ends", "/shell/Receive", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
			w.WriteHeader(200)
			io.WriteString(w, `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">`)
			w.(http.Flusher).Flush()
			for {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := io.WriteString(w, " "); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}, ErrWinRM, "did not finish its answer within 3s"},
	}
	// Answers must be complete within OperationTimeout (1 s here) plus
	// this slack; production uses 30 s.
	defer func(s time.Duration) { answerSlack = s }(answerSlack)
	answerSlack = 2 * time.Second
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			h := &hostileWSMan{fakeWSMan: f, action: tt.action, answer: tt.answer}
			cfg := serveHandler(t, f, h)
			r, _ := newRunner(t, cfg)
			r.MaxOutput = 1 << 20

			heap := heapwatch.Start(10 * time.Millisecond)
			// A generous outer bound only: the runner must give up on its
			// own well before it.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				_, err := r.Run(ctx, DetectScript, nil)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(90 * time.Second):
				t.Fatal("Run did not return within 90 s")
			}
			elapsed := time.Since(start)
			_, grow := heap.Stop()
			t.Logf("%s after %s, heap +%d KiB: %v", tt.name, elapsed.Round(time.Millisecond), grow>>10, err)
			if h.hits.Load() == 0 {
				t.Fatalf("the hostile answer was never sent")
			}
			if err == nil {
				t.Fatal("Run succeeded against a hostile host")
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				t.Fatalf("Run gave up only at the caller's deadline (%s): %v", elapsed, err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if tt.text != "" && !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %q, want it to contain %q", err, tt.text)
			}
			if strings.Contains(err.Error(), f.pass) {
				t.Error("the error holds the password")
			}
			if len(err.Error()) > 2048 {
				t.Errorf("error message of %d bytes", len(err.Error()))
			}
			// 8 MiB is the answer cap (maxResponse); allow for a copy as
			// a string and the library's parse.
			if grow > 64<<20 {
				t.Errorf("heap grew by %d MiB", grow>>20)
			}
			if elapsed > 45*time.Second {
				t.Errorf("took %s", elapsed)
			}
		})
	}
}

// serveHandler is serveWith (HTTPS, httptest's certificate) with h in
// front of f.
func serveHandler(t *testing.T, f *fakeWSMan, h http.Handler) WinRMConfig {
	t.Helper()
	cfg := serve(t, f, true)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	cfg.Host = host
	cfg.Port, _ = strconv.Atoi(port)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.CACertFile = ca
	return cfg
}

// TestHostileCertificateMismatch: a certificate for another name is
// refused (ErrTLS, naming the name) unless the operator chose Insecure,
// which works and warns.
func TestHostileCertificateMismatch(t *testing.T) {
	f := newFake()
	cfg := serve(t, f, true)
	cfg.TLSServerName = "mail.attacker.example"
	r, _ := newRunner(t, cfg)
	_, err := r.Run(context.Background(), DetectScript, nil)
	if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "mail.attacker.example") {
		t.Fatalf("mismatched certificate: err = %v, want ErrTLS naming the name", err)
	}
	f.mu.Lock()
	n := len(f.actions)
	f.mu.Unlock()
	if n != 0 {
		t.Errorf("%d requests reached the host over an unverified connection", n)
	}
	cfg.CACertFile, cfg.Insecure = "", true
	r, warns := newRunner(t, cfg)
	if len(warns) == 0 {
		t.Error("insecure mode gave no warning")
	}
	if _, err := r.Run(context.Background(), DetectScript, nil); err != nil {
		t.Fatalf("with Insecure: %v", err)
	}
}
