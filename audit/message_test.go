package audit

import (
	"bytes"
	"net/mail"
	"strings"
	"testing"
	"time"
)

func TestBuildTestMessage(t *testing.T) {
	now := time.Date(2026, 11, 29, 7, 0, 0, 0, time.UTC)
	b := BuildTestMessage("rltoken", "probe@example.net", "me@example.org", "ops@example.net\r\nBcc: x@evil.test", now)
	if bytes.Contains(bytes.ReplaceAll(b, []byte("\r\n"), nil), []byte("\n")) || bytes.Contains(bytes.ReplaceAll(b, []byte("\r\n"), nil), []byte("\r")) {
		t.Fatal("bare CR or LF in message")
	}
	if !bytes.Contains(b, []byte("\r\n..If this line")) {
		t.Error("line starting with a dot not stuffed")
	}
	m, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("X-Relaylock-Token") != "rltoken" || !strings.Contains(m.Header.Get("Subject"), "relaylock relay test rltoken") ||
		m.Header.Get("Message-Id") != "<rltoken@example.org>" || m.Header.Get("Bcc") != "" {
		t.Fatalf("headers %v", m.Header)
	}
	if d, err := m.Header.Date(); err != nil || !d.Equal(now) {
		t.Fatalf("date %v %v", d, err)
	}
}
