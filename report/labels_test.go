package report

import (
	"testing"

	"github.com/relaylock/relaylock/audit"
)

// TestLineLabels: in a pipelined batch (RFC 2920) every reply line is
// labelled with the test whose command it answers, by order, including
// multi-line replies, a refused RCPT, the bogus login of an A41 test and
// message content after 354, which has no reply of its own.
func TestLineLabels(t *testing.T) {
	tests := []audit.TestResult{
		{ID: "C1", MailFrom: "<a1@example.net>", RcptTo: "<postmaster@corp.example>", Outcome: audit.OutcomeAccepted},
		{ID: "S1", MailFrom: "<>", RcptTo: "<relaytest@example.net>", Outcome: audit.OutcomeOpenLikely},
		{ID: "S2", MailFrom: "<a2@example.net>", RcptTo: "<relaytest@example.net>", Outcome: audit.OutcomeDenied},
		// Same MAIL FROM form as S2: told apart by RCPT TO.
		{ID: "R13", MailFrom: "<a2@example.net>", RcptTo: "<relaytest%example.net@[127.0.0.1]>", Outcome: audit.OutcomeDenied},
		// Skipped once S1's reply settled the verdict, but sent in the
		// same batch before that reply was read.
		{ID: "R14", MailFrom: "<a4@example.net>", RcptTo: "<relaytest%example.net@corp.example>", Outcome: audit.OutcomeSkipped},
		// Decided on a later connection: still sent in this batch.
		{ID: "A41b", Auth: "login-made-up", MailFrom: "<a3@example.net>", RcptTo: "<relaytest@example.net>", Outcome: audit.OutcomeDenied, Conn: 3},
	}
	// dir, text, want label
	script := [][3]string{
		{"*", "connected from 127.0.0.1:33780", ""},
		{"S", "220 mail.corp.example ESMTP ready", ""},
		{"C", "EHLO example.net", ""},
		{"S", "250-mail.corp.example", ""},
		{"S", "250-PIPELINING", ""},
		{"S", "250 ENHANCEDSTATUSCODES", ""},
		{"C", "MAIL FROM:<a1@example.net> SIZE=100", "C1"},
		{"C", "RCPT TO:<postmaster@corp.example>", "C1"},
		{"C", "RSET", "C1"},
		{"C", "MAIL FROM:<a2@example.net>", "S2"},
		{"C", "RCPT TO:<relaytest@example.net>", "S2"},
		{"C", "RSET", "S2"},
		{"C", "MAIL FROM:<a2@example.net>", "R13"},
		{"C", "RCPT TO:<relaytest%example.net@[127.0.0.1]>", "R13"},
		{"C", "RSET", "R13"},
		{"C", "MAIL FROM:<a4@example.net>", "R14"},
		{"C", "RCPT TO:<relaytest%example.net@corp.example>", "R14"},
		{"C", "RSET", "R14"},
		{"C", "MAIL FROM:<>", "S1"}, // out of matrix order: not before S2
		{"C", "RCPT TO:<relaytest@example.net>", "S1"},
		{"C", "DATA", "S1"},
		{"S", "250 2.1.0 Ok", "C1"},
		{"S", "250 2.1.5 postmaster@corp.example", "C1"},
		{"S", "250 2.0.0 Ok", "C1"},
		{"S", "250 2.1.0 Ok", "S2"},
		{"S", "550-5.7.1 Unable to relay", "S2"},
		{"S", "550 5.7.1 (second line)", "S2"},
		{"S", "250 2.0.0 Ok", "S2"},
		{"S", "250 2.1.0 Ok", "R13"},
		{"S", "501 5.1.3 Bad recipient address syntax", "R13"},
		{"S", "250 2.0.0 Ok", "R13"},
		{"S", "250 2.1.0 Ok", "R14"},
		{"S", "250 2.1.5 ok", "R14"},
		{"S", "250 2.0.0 Ok", "R14"},
		{"S", "250 2.1.0 Ok", "S1"},
		{"S", "250 2.1.5 relaytest@example.net", "S1"},
		{"S", "354 End data with <CR><LF>.<CR><LF>", "S1"},
		{"C", "Subject: relaylock test", "S1"},
		{"C", "", "S1"},
		{"C", "RSET", "S1"}, // content, not a command
		{"C", ".", "S1"},
		{"S", "250 2.0.0 queued", "S1"},
		{"C", "AUTH LOGIN", "A41b"},
		{"S", "334 VXNlcm5hbWU6", "A41b"},
		{"C", "bWFkZXVw", "A41b"},
		{"S", "334 UGFzc3dvcmQ6", "A41b"},
		{"C", "bm9wZQ==", "A41b"},
		{"S", "535 5.7.8 Authentication credentials invalid", "A41b"},
		{"C", "MAIL FROM:<a3@example.net>", "A41b"},
		{"C", "RCPT TO:<relaytest@example.net>", "A41b"},
		{"C", "QUIT", ""},
		{"S", "250 2.1.0 Ok", "A41b"},
		{"S", "550 5.7.1 Unable to relay", "A41b"},
		{"S", "221 2.0.0 Bye", ""},
		{"*", "connection closed", ""},
	}
	var tr audit.Transcript
	for _, l := range script {
		tr.Lines = append(tr.Lines, audit.TranscriptLine{Dir: l[0], Text: l[1]})
	}
	got := lineLabels(&tr, tests)
	for i, l := range script {
		if got[i] != l[2] {
			t.Errorf("line %d %s: %q labelled %q, want %q", i, l[0], l[1], got[i], l[2])
		}
	}
}
