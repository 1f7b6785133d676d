package lab

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// The HTTP side of NTLM message encryption (MS-WSMV 2.2.9.1): a sealed
// request is unsealed before the SOAP layer sees it, and whatever the
// SOAP layer answers is sealed with the server-to-client keys of the same
// connection. ntlmseal.go has the format and the cryptography.

// sealedKey marks a request that arrived sealed; its value is the NTLM
// sequence number (uint32) the client signed it with.
type sealedKey struct{}

// sealedCall marks c as sealed when r arrived sealed.
func sealedCall(r *http.Request, c Call) Call {
	if seq, ok := r.Context().Value(sealedKey{}).(uint32); ok {
		c.Sealed, c.SeqNum = true, seq
	}
	return c
}

// unsealRequest checks and unseals an encrypted request body. It writes
// the refusal itself and returns ok=false when the request may not go on:
//
//   - 401 when the connection has no NTLM session that can seal (it has
//     not authenticated with NTLM, or negotiated no sealing): Windows
//     cannot decrypt it either and asks the client to authenticate;
//   - 415 for another protocol (Kerberos, CredSSP) or boundary;
//   - 400 for a malformed body, a wrong length, a bad signature or a
//     wrong sequence number; the NTLM session then ends and the
//     connection is closed (ntlmseal.go).
func (w *WSMan) unsealRequest(rw http.ResponseWriter, cs *connState, mt string, params map[string]string, body []byte) (plain []byte, seq uint32, ok bool) {
	if cs == nil {
		w.record(Call{Status: http.StatusUnauthorized, Fault: "sealed-unauthenticated"})
		w.unauthorized(rw, "")
		return nil, 0, false
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if !cs.authenticated || cs.sealing == nil {
		w.record(Call{Status: http.StatusUnauthorized, Fault: "sealed-unauthenticated"})
		w.unauthorized(rw, "")
		return nil, 0, false
	}
	if !strings.EqualFold(params["protocol"], sealProtocol) || params["boundary"] != sealBoundary {
		w.record(Call{Status: http.StatusUnsupportedMediaType, Fault: "message-encryption-protocol"})
		rw.WriteHeader(http.StatusUnsupportedMediaType)
		return nil, 0, false
	}
	refuse := func(err error) {
		cs.reset()
		w.record(Call{Status: http.StatusBadRequest, Fault: "sealed-refused"})
		if w.cfg.Logf != nil {
			w.cfg.Logf("winrm: refused a sealed request: %v", err)
		}
		rw.Header().Set("Connection", "close")
		rw.Header().Set("Content-Length", "0")
		rw.WriteHeader(http.StatusBadRequest)
	}
	parts, err := parseEncrypted(body, mt == "multipart/x-multi-encrypted")
	if err != nil {
		refuse(err)
		return nil, 0, false
	}
	seq = cs.sealing.seqIn
	for _, p := range parts {
		m, err := cs.sealing.unseal(p.sealed, p.sig)
		if err != nil {
			refuse(err)
			return nil, 0, false
		}
		plain = append(plain, m...)
	}
	return plain, seq, true
}

// sealWriter holds the SOAP layer's answer to a sealed request and, in
// finish, sends it sealed. Headers go straight to the real writer;
// Hijack (FaultDrop) passes through.
type sealWriter struct {
	rw       http.ResponseWriter
	cs       *connState
	status   int
	buf      bytes.Buffer
	hijacked bool
}

func (s *sealWriter) Header() http.Header { return s.rw.Header() }

func (s *sealWriter) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
}

func (s *sealWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.buf.Write(p)
}

func (s *sealWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := s.rw.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	s.hijacked = true
	return hj.Hijack()
}

// finish seals the answer: every SOAP body, faults (HTTP 500) included,
// as Windows does. An answer without a body (a refusal before SOAP) goes
// out as it is; a handler that wrote nothing (a hung request whose
// client left) gets nothing either.
func (s *sealWriter) finish() {
	if s.hijacked || s.status == 0 {
		return
	}
	h := s.rw.Header()
	if s.buf.Len() == 0 {
		s.rw.WriteHeader(s.status)
		return
	}
	s.cs.mu.Lock()
	if s.cs.sealing == nil {
		// Cannot happen: the session ends only on a refused request.
		s.cs.mu.Unlock()
		h.Set("Connection", "close")
		s.rw.WriteHeader(http.StatusInternalServerError)
		return
	}
	sealed, sig := s.cs.sealing.seal(s.buf.Bytes())
	s.cs.mu.Unlock()
	out := buildEncrypted(sig, sealed)
	h.Set("Content-Type", sealedCT)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	s.rw.WriteHeader(s.status)
	_, _ = s.rw.Write(out)
}
