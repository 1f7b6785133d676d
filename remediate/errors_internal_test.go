package remediate

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The runner's errors are classified by type and sentinel; only libSays
// reads text, and only what libraries give as text.
func TestClassifyTransportByType(t *testing.T) {
	cfg := WinRMConfig{Host: "h.example", Port: 5986, HTTPS: true, User: "u"}
	post := func(err error) error { return &url.Error{Op: "Post", URL: "https://h.example:5986/wsman", Err: err} }
	for _, tc := range []struct {
		name string
		err  error
		kind error // must match
		sub  error // must match too (nil: none of the finer kinds)
	}{
		{"unknown authority", post(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), ErrTLS, nil},
		{"wrong name", post(&tls.CertificateVerificationError{Err: x509.HostnameError{Host: "h", Certificate: &x509.Certificate{}}}), ErrTLS, nil},
		{"typed alert protocol_version", post(tls.AlertError(70)), ErrTLS, ErrTLSVersion},
		{"typed alert handshake_failure", post(tls.AlertError(40)), ErrTLS, ErrTLSVersion},
		{"typed alert bad_certificate", post(tls.AlertError(42)), ErrTLS, nil},
		{"client refuses the version (text only)", post(errors.New("tls: server selected unsupported protocol version 301")), ErrTLS, ErrTLSVersion},
		{"HTTPS to an HTTP listener", post(http.ErrSchemeMismatch), ErrTLS, ErrSchemeMismatch},
		{"HTTP to an HTTPS listener (text only)", post(errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP response "\x15\x03\x01\x00\x02\x02"`)), ErrTLS, ErrSchemeMismatch},
		{"connection closed", post(io.ErrUnexpectedEOF), ErrUnreachable, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classifyTransport(context.Background(), cfg, tc.err)
			if !errors.Is(got, tc.kind) {
				t.Fatalf("%v: not %v", got, tc.kind)
			}
			for _, sub := range []error{ErrTLSVersion, ErrSchemeMismatch, ErrKDCUnreachable, ErrOutcomeUnknown} {
				if want := sub == tc.sub; errors.Is(got, sub) != want {
					t.Errorf("%v: errors.Is %v = %v, want %v", got, sub, !want, want)
				}
			}
			// A certificate error keeps its x509 type for cmd/'s advice.
			var ua x509.UnknownAuthorityError
			if errors.As(tc.err, &ua) && !errors.As(got, &ua) {
				t.Errorf("%v: lost x509.UnknownAuthorityError", got)
			}
			var hn x509.HostnameError
			if errors.As(tc.err, &hn) && !errors.As(got, &hn) {
				t.Errorf("%v: lost x509.HostnameError", got)
			}
		})
	}
}

// withKind adds a kind without changing the text that goes to stderr and
// the evidence.
func TestWithKindKeepsText(t *testing.T) {
	base := kindErr(ErrUnreachable, io.EOF, "lost the connection to h during Send: the script's outcome on the host is unknown")
	got := withKind(base, ErrOutcomeUnknown)
	if got.Error() != base.Error() || !errors.Is(got, ErrOutcomeUnknown) || !errors.Is(got, ErrUnreachable) || !errors.Is(got, io.EOF) {
		t.Errorf("withKind: %q, Is outcome=%v unreachable=%v EOF=%v", got, errors.Is(got, ErrOutcomeUnknown), errors.Is(got, ErrUnreachable), errors.Is(got, io.EOF))
	}
	if withKind(nil, ErrOutcomeUnknown) != nil {
		t.Error("withKind(nil) is not nil")
	}
}

func TestLostDuringIsOutcomeUnknown(t *testing.T) {
	cfg := WinRMConfig{Host: "h", Port: 5986}
	unreach := kindErr(ErrUnreachable, io.EOF, "cannot reach h:5986")
	for action, want := range map[string]bool{
		"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send":    true,
		"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive": true,
		"http://schemas.xmlsoap.org/ws/2004/09/transfer/Create":           false,
	} {
		if got := lostDuring(cfg, action, unreach); errors.Is(got, ErrOutcomeUnknown) != want {
			t.Errorf("%s: %v, outcome unknown = %v, want %v", action, got, !want, want)
		}
	}
}

func TestEnvelopeTooLarge(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&FaultError{Subcode: "w:EncodingLimit", Reason: "the request is too large"}, true},
		{&FaultError{Subcode: "w:AccessDenied"}, false},
		{fmt.Errorf("run: %w", &FaultError{Subcode: "w:EncodingLimit"}), true},
	} {
		if got := errors.Is(tc.err, ErrEnvelopeTooLarge); got != tc.want {
			t.Errorf("%v: ErrEnvelopeTooLarge = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestConnectFailed(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&url.Error{Op: "Post", Err: errors.New("net/http: TLS handshake timeout")}, true},
		{&url.Error{Op: "Post", Err: io.ErrUnexpectedEOF}, false},
	} {
		if got := connectFailed(tc.err); got != tc.want {
			t.Errorf("connectFailed(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestWebWMIMissing(t *testing.T) {
	for _, tc := range []struct {
		e    ScriptError
		want bool
	}{
		{ScriptError{Kind: errorKindFeatureMissing, Feature: "Web-WMI"}, true},
		{ScriptError{HResult: hresultInvalidNamespace}, true},
		{ScriptError{Kind: errorKindFeatureMissing, Feature: "RSAT-ADDS"}, false},
		{ScriptError{Message: "Web-WMI is not installed"}, false}, // text alone says nothing
	} {
		if got := tc.e.webWMIMissing(); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.e, got, tc.want)
		}
	}
	if !strings.Contains(ErrWebWMIMissing.Error(), "Web-WMI") {
		t.Error(ErrWebWMIMissing)
	}
}

// A real handshake between a TLS 1.0-only listener (Windows 2003/2008)
// and a client that wants TLS 1.2 is recognised as a version mismatch,
// whichever side refuses.
func TestTLSVersionMismatchRealHandshake(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "h"}, DNSNames: []string{"h"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	for _, tc := range []struct {
		name           string
		server, client *tls.Config
		want           bool
	}{
		{"server TLS 1.0 only", &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS10},
			&tls.Config{ServerName: "h", InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, true},
		{"client TLS 1.0 only", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			&tls.Config{ServerName: "h", InsecureSkipVerify: true, MaxVersion: tls.VersionTLS10}, true},
		{"unknown authority", &tls.Config{Certificates: []tls.Certificate{cert}},
			&tls.Config{ServerName: "h", RootCAs: x509.NewCertPool()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, cc := net.Pipe()
			defer sc.Close()
			defer cc.Close()
			go func() { _ = tls.Server(sc, tc.server).Handshake(); sc.Close() }()
			err := tls.Client(cc, tc.client).Handshake()
			if err == nil {
				t.Fatal("handshake succeeded")
			}
			if got := TLSVersionMismatch(err); got != tc.want {
				t.Errorf("TLSVersionMismatch(%v) = %v, want %v", err, got, tc.want)
			}
			cfg := WinRMConfig{Host: "h", Port: 5986, HTTPS: true}
			got := classifyTransport(context.Background(), cfg, &url.Error{Op: "Post", URL: "https://h:5986/wsman", Err: err})
			if !errors.Is(got, ErrTLS) || errors.Is(got, ErrTLSVersion) != tc.want {
				t.Errorf("classifyTransport: %v (ErrTLSVersion %v, want %v)", got, errors.Is(got, ErrTLSVersion), tc.want)
			}
		})
	}
}
