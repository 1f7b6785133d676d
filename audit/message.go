package audit

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// BuildTestMessage returns the message sent in deliver and catch modes: an
// RFC 5322 message, clearly marked as a relay test, carrying token in the
// Subject, an X-Relaylock-Token header and the Message-ID. Lines end in
// CRLF and are dot-stuffed (RFC 5321 §4.5.2), so the result can be written
// after DATA's 354 as is; the terminating "." line is not included.
func BuildTestMessage(token, from, to, contact string, now time.Time) []byte {
	if from == "" {
		from = "<>"
	}
	domain := "relaylock.invalid"
	if _, d, ok := strings.Cut(to, "@"); ok && d != "" {
		domain = strings.Trim(d, "<>[]")
	}
	who := "the operator of the relaylock run"
	if contact != "" {
		who = contact
	}
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, oneLine(v)) }
	hdr("From", "relaylock relay test <"+strings.Trim(from, "<>")+">")
	hdr("To", "<"+strings.Trim(to, "<>")+">")
	hdr("Subject", "relaylock relay test "+token)
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+token+"@"+domain+">")
	hdr("X-Relaylock-Token", token)
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=us-ascii")
	b.WriteString("\r\n")
	body := []string{
		"This is an automated SMTP open-relay test sent by relaylock.",
		"",
		"A mail server accepted this message for a recipient outside the",
		"domains it serves. If you received it, that server relays mail for",
		"anyone and should be fixed.",
		"",
		"Token: " + token,
		"Contact: " + who,
		"",
		".If this line starts with a single dot, dot-stuffing worked.",
	}
	for _, l := range body {
		if strings.HasPrefix(l, ".") {
			l = "." + l // RFC 5321 §4.5.2 transparency
		}
		b.WriteString(oneLine(l))
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// oneLine removes CR and LF so header values cannot be split.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
