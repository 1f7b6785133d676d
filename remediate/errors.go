package remediate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// Error kinds of the WinRM runner. Test them with errors.Is; the errors
// returned carry the host, the user and the underlying cause in their text.
// Only cmd/ turns them into advice (hints).
var (
	// ErrAuth: the host refused the credentials (HTTP 401, Kerberos
	// pre-authentication failure).
	ErrAuth = errors.New("authentication failed")
	// ErrUnreachable: no TCP connection, DNS failure, or the host stopped
	// answering (dial or response timeout, connection reset).
	ErrUnreachable = errors.New("host unreachable")
	// ErrTLS: the TLS handshake failed, usually certificate verification
	// (unknown authority, wrong name, expired) or a protocol mismatch.
	ErrTLS = errors.New("tls handshake failed")
	// ErrFeatureMissing: a Windows feature or snap-in the script needs is not
	// installed (for example Web-WMI, "IIS 6 WMI Compatibility").
	ErrFeatureMissing = errors.New("windows feature missing")
	// ErrAccessDenied: authenticated, but not allowed (not an administrator,
	// WS-Man AccessDenied fault, "Access is denied" from a script).
	ErrAccessDenied = errors.New("access denied")
	// ErrScript: the script ran and failed (non-zero exit code).
	ErrScript = errors.New("script failed")
	// ErrWinRM: the WS-Management service answered with a fault, or with
	// something that is not a WS-Management answer.
	ErrWinRM = errors.New("winrm protocol error")
	// ErrConfig: the WinRM settings are incomplete or unsafe.
	ErrConfig = errors.New("invalid winrm configuration")
)

// Finer kinds, matched with errors.Is next to the kinds above (an error
// carries both); they do not change an error's text. cmd/ chooses its
// advice by them.
var (
	// ErrTLSVersion: the TLS handshake found no protocol version or cipher
	// suite in common (old Windows listeners speak only TLS 1.0).
	ErrTLSVersion = errors.New("no TLS version or cipher suite in common")
	// ErrSchemeMismatch: HTTPS was spoken to a plain HTTP listener, or
	// plain HTTP to an HTTPS one.
	ErrSchemeMismatch = errors.New("HTTP vs HTTPS mismatch")
	// ErrKDCUnreachable: no Kerberos KDC of the user's realm answered.
	ErrKDCUnreachable = errors.New("kerberos KDC unreachable")
	// ErrKerberosSPN: the KDC knows no service principal of the name a
	// ticket was asked for (KDC_ERR_S_PRINCIPAL_UNKNOWN), with ErrAuth.
	ErrKerberosSPN = errors.New("kerberos service principal unknown to the KDC")
	// ErrOutcomeUnknown: the connection was lost after a command may have
	// started on the host, so what it did there is unknown.
	ErrOutcomeUnknown = errors.New("outcome on the host unknown")
	// ErrWebWMIMissing: IIS 6 WMI Compatibility (Web-WMI), which the IIS
	// SMTP scripts read through, is not installed (or its WMI namespace is
	// missing).
	ErrWebWMIMissing = errors.New("Web-WMI not installed")
	// ErrEnvelopeTooLarge: the host refused a request larger than its
	// MaxEnvelopeSizekb (HTTP 413, or a wsman:EncodingLimit fault, DSP0226).
	ErrEnvelopeTooLarge = errors.New("request larger than the host's MaxEnvelopeSizekb")
)

// TLSVersionMismatch reports a TLS handshake error that comes from having
// no protocol version or cipher suite in common with the server.
func TLSVersionMismatch(err error) bool { return tlsVersionMismatch(err) }

// withKind makes err match kind with errors.Is too, keeping its text.
func withKind(err, kind error) error {
	if err == nil {
		return nil
	}
	return &kindedError{err: err, kind: kind}
}

type kindedError struct{ err, kind error }

func (e *kindedError) Error() string   { return e.err.Error() }
func (e *kindedError) Unwrap() []error { return []error{e.err, e.kind} }

// libText is what an error says that a library reports only as text.
type libText int

const (
	libTextHTTP401             libText = iota // masterzen/winrm: "http response error: 401 - invalid content type"
	libTextHTTP413                            // masterzen/winrm: "http error 413: ..." (MaxEnvelopeSizekb)
	libTextKerberosAuth                       // gokrb5: KDC_ERR_PREAUTH_FAILED, KDC_ERR_C_PRINCIPAL_UNKNOWN
	libTextKDCUnreachable                     // gokrb5: Networking_Error, "error sending to a KDC"
	libTextKerberosSPN                        // gokrb5: KDC_ERR_S_PRINCIPAL_UNKNOWN (no such service principal)
	libTextCanceled                           // a library that flattened context.Canceled into text
	libTextMalformedHTTP                      // net/http: HTTPS listener answered a plain HTTP request
	libTextTLSHandshakeTimeout                // net/http: TLS handshake timeout
	libTextTLSVersion                         // crypto/tls: no version or cipher suite in common (client side)
	libTextTLS                                // crypto/tls: any other "tls: " error without a type
)

// libSays is the ONE place relaylock reads error messages: it reports
// whether err's text says t. Everything else classifies errors with
// errors.Is/As. It exists because these errors carry no type or sentinel:
// masterzen/winrm formats the HTTP status into its text (http.go: "http
// response error: %d - %w", "http error %d: %s"); gokrb5 reports KDC
// errors as text; net/http's "malformed HTTP response" (badStringError)
// and "TLS handshake timeout" (tlsHandshakeTimeoutError) types are
// unexported; crypto/tls returns plain fmt.Errorf errors when the client
// itself refuses the server's version or finds no cipher suite in common.
// The texts matched are those libraries' own, in English, never Windows'
// (which Windows translates).
func libSays(err error, t libText) bool {
	s := err.Error()
	switch t {
	case libTextHTTP401:
		return strings.Contains(s, "401")
	case libTextHTTP413:
		return strings.Contains(s, "http error 413") || strings.Contains(s, "http response error: 413")
	case libTextKerberosAuth:
		return strings.Contains(s, "KDC_ERR_PREAUTH_FAILED") || strings.Contains(s, "KDC_ERR_C_PRINCIPAL_UNKNOWN")
	case libTextKerberosSPN:
		return strings.Contains(s, "KDC_ERR_S_PRINCIPAL_UNKNOWN")
	case libTextKDCUnreachable:
		return strings.Contains(s, "Networking_Error") || strings.Contains(s, "error sending to a KDC")
	case libTextCanceled:
		return strings.Contains(s, "canceled")
	case libTextMalformedHTTP:
		return strings.Contains(s, "malformed HTTP response")
	case libTextTLSHandshakeTimeout:
		return strings.Contains(s, "TLS handshake timeout")
	case libTextTLSVersion:
		return strings.Contains(s, "tls: server selected unsupported protocol version") ||
			strings.Contains(s, "tls: no cipher suite supported") ||
			strings.Contains(s, "tls: no supported versions") ||
			strings.Contains(s, "tls: protocol version not supported") ||
			strings.Contains(s, "tls: handshake failure")
	case libTextTLS:
		return strings.Contains(s, "tls: ")
	}
	return false
}

// tlsVersionMismatch reports a handshake that failed for want of a common
// protocol version or cipher suite. crypto/tls exports the alert type
// (tls.AlertError) only for QUIC: over TCP the server's alert arrives as
// an unexported type in a *net.OpError ("remote error: tls: protocol
// version not supported"), and the client's own refusal as a plain
// fmt.Errorf, so both are read by libSays.
func tlsVersionMismatch(err error) bool {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		switch ae {
		case 40, 70, 71: // handshake_failure, protocol_version, insufficient_security (RFC 8446 §6)
			return true
		}
	}
	return libSays(err, libTextTLSVersion)
}

// ErrRefusedUnlessForced marks a refusal that Request.Force lifts (a
// RelayIpList whose ADSI reading differs from relaylock's decoding). The
// library's words stay free of flag names because they are stored in the
// evidence; cmd/ names the flag when it prints the error.
var ErrRefusedUnlessForced = errors.New("refused unless forced")

// hostError is an error of one kind (one of the sentinels above) with a
// readable message and an optional cause. errors.Is matches both the kind
// and the cause (Go 1.20 multi-unwrap).
type hostError struct {
	kind  error
	msg   string
	cause error
}

func (e *hostError) Error() string {
	if e.cause == nil {
		return e.msg
	}
	return e.msg + ": " + e.cause.Error()
}

func (e *hostError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func kindErr(kind error, cause error, format string, a ...any) error {
	return &hostError{kind: kind, msg: fmt.Sprintf(format, a...), cause: cause}
}

// FaultError is a WS-Management SOAP fault (MS-WSMV 2.2.4.43).
type FaultError struct {
	Status  int    // HTTP status (500 for faults)
	Code    string // s:Code/s:Value, e.g. "s:Sender"
	Subcode string // s:Subcode/s:Value, e.g. "w:AccessDenied"
	Reason  string // s:Reason/s:Text
	// WSManCode is f:WSManFault/@Code, a Win32 or WinRM error number
	// ("2150858793" is ERROR_WSMAN_OPERATION_TIMEDOUT).
	WSManCode string
	Message   string // f:WSManFault/f:Message
}

func (f *FaultError) Error() string {
	msg := strings.TrimSpace(f.Reason)
	if msg == "" {
		msg = strings.TrimSpace(f.Message)
	}
	s := "ws-management fault"
	if f.Subcode != "" {
		s += " " + f.Subcode
	}
	if f.WSManCode != "" {
		s += " (code " + f.WSManCode + ")"
	}
	if msg != "" {
		s += ": " + msg
	}
	return s
}

// Is makes every fault match ErrWinRM, access-denied faults
// ErrAccessDenied, and wsman:EncodingLimit faults ErrEnvelopeTooLarge.
func (f *FaultError) Is(target error) bool {
	switch target {
	case ErrWinRM:
		return true
	case ErrAccessDenied:
		return strings.HasSuffix(f.Subcode, "AccessDenied") || f.WSManCode == "5"
	case ErrEnvelopeTooLarge:
		return strings.HasSuffix(f.Subcode, "EncodingLimit")
	}
	return false
}

// timedOut reports the OperationTimeout fault that ends every idle
// Receive long-poll (MS-WSMV 3.1.4.14; docs/winrm.md §2.5).
func (f *FaultError) timedOut() bool {
	return strings.HasSuffix(f.Subcode, "TimedOut") || f.WSManCode == "2150858793"
}

// classifyTransport turns an error from talking to the WinRM service into
// one of the kinds above. It leaves already classified errors alone.
func classifyTransport(ctx context.Context, cfg WinRMConfig, err error) error {
	if err == nil {
		return nil
	}
	var he *hostError
	if errors.As(err, &he) {
		return err
	}
	var fe *FaultError
	if errors.As(err, &fe) {
		if errors.Is(fe, ErrAccessDenied) {
			return kindErr(ErrAccessDenied, fe, "%s at %s is not allowed to run commands over WinRM", cfg.User, cfg.Host)
		}
		return err
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || libSays(err, libTextCanceled)) {
		return fmt.Errorf("winrm %s: %w", cfg.hostPort(), ctx.Err())
	}
	hp := cfg.hostPort()
	if isTLSError(err) {
		e := kindErr(ErrTLS, tlsReason(err), "tls connection to %s failed", hp)
		if tlsVersionMismatch(err) {
			e = withKind(e, ErrTLSVersion)
		}
		return e
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var uErr *url.Error
	switch {
	case errors.As(err, &dnsErr):
		return kindErr(ErrUnreachable, dnsErr, "cannot reach %s", hp)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return kindErr(ErrUnreachable, opErr.Err, "cannot reach %s", hp)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return kindErr(ErrUnreachable, err, "cannot reach %s (connection closed)", hp)
	case errors.As(err, &uErr) && uErr.Timeout(), isTimeout(err):
		return kindErr(ErrUnreachable, err, "cannot reach %s (no answer in time)", hp)
	case errors.Is(err, http.ErrSchemeMismatch) || libSays(err, libTextMalformedHTTP):
		return withKind(kindErr(ErrTLS, err, "%s does not speak the expected protocol (HTTP vs HTTPS mismatch: port %d is %s here)", hp, cfg.Port, map[bool]string{true: "used with HTTPS", false: "used with plain HTTP"}[cfg.HTTPS]), ErrSchemeMismatch)
	}
	return kindErr(ErrWinRM, err, "winrm request to %s failed", hp)
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func isTLSError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) ||
		errors.As(err, &rh) || errors.As(err, &ae) || libSays(err, libTextTLS)
}

// tlsReason extracts the x509/tls reason from a wrapped error chain.
func tlsReason(err error) error {
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return cv.Err
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return ua
	}
	var hn x509.HostnameError
	if errors.As(err, &hn) {
		return hn
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) {
		return ci
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr.Err
	}
	return err
}

// classifyScript turns a finished run into an error: nil when the script
// ended with exit code 0, otherwise an ErrScript or, recognised from its
// error records by HRESULT, exception type or FullyQualifiedErrorId (never
// by message text, which Windows translates: hresult.go), ErrFeatureMissing
// or ErrAccessDenied, carrying the messages.
func classifyScript(host string, run *ScriptRun) error {
	if run.ExitCode == 0 {
		return nil
	}
	msgs := strings.Join(run.Errors, "; ")
	for _, e := range ScriptErrors(run.Output) {
		if what, ok := e.FeatureMissing(); ok {
			err := kindErr(ErrFeatureMissing, nil, "script %s on %s: %s is not installed: %s", run.Script, host, what, e)
			if e.webWMIMissing() {
				err = withKind(err, ErrWebWMIMissing)
			}
			return err
		}
	}
	for _, e := range ScriptErrors(run.Output) {
		if e.AccessDenied() {
			return kindErr(ErrAccessDenied, nil, "script %s on %s: access denied (run as a local administrator, and as an Exchange organization administrator on Exchange): %s", run.Script, host, e)
		}
	}
	if msgs == "" {
		msgs = "no error message"
	}
	return kindErr(ErrScript, nil, "script %s on %s failed (exit code %d): %s", run.Script, host, run.ExitCode, msgs)
}

// frameErr wraps a psframe.ErrFrame with what else is known about the run,
// keeping errors.Is(err, psframe.ErrFrame).
func frameErr(host string, run *ScriptRun, err error) error {
	detail := ""
	if len(run.Errors) > 0 {
		detail = " (stderr: " + strings.Join(run.Errors, "; ") + ")"
	}
	if run.ExitCode != 0 && detail == "" {
		detail = fmt.Sprintf(" (exit code %d)", run.ExitCode)
	}
	if !errors.Is(err, psframe.ErrFrame) {
		err = fmt.Errorf("%w: %w", psframe.ErrFrame, err)
	}
	return fmt.Errorf("script %s on %s%s: %w", run.Script, host, detail, err)
}
