package report

import (
	"strings"

	"github.com/relaylock/relaylock/audit"
)

// lineLabels names, for each line of a connection's transcript, the test
// that a command belongs to or that a reply answers ("" for the greeting,
// EHLO, STARTTLS, QUIT and events).
//
// With PIPELINING (RFC 2920) the probe sends the commands of many tests
// in one batch and the replies follow in a second batch, so a reply
// cannot be matched to its test by position on the page. RFC 2920 §3.1
// has the server answer in the order the commands were sent; RFC 5321
// §4.2.1 makes a reply "ddd-" lines followed by one "ddd " (or "ddd")
// line. So every command that expects a reply queues its test, and every
// complete reply takes the oldest queued test. Message content after a
// 354 reply expects no reply of its own until the line ".".
//
// Commands are matched to tests by their MAIL FROM and RCPT TO forms, in
// the order of tests (the order they ran in). Every test of the endpoint
// is a candidate, not only those whose TestResult.Conn is this
// connection: Conn names the connection that decided a test, and a test
// first sent in a batch may be decided on a later connection (a DATA
// check of an accepted form).
//
// Skipped tests count too: a batch is sent before any reply is read, so a
// test skipped because the verdict was settled by an earlier reply of the
// same batch was still sent.
func lineLabels(tr *audit.Transcript, tests []audit.TestResult) []string {
	mine := make([]*audit.TestResult, len(tests))
	for i := range tests {
		mine[i] = &tests[i]
	}
	labels := make([]string, len(tr.Lines))
	if len(mine) == 0 {
		return labels
	}
	next := 0            // first test not yet matched by its commands
	cur := -1            // the test the last command belonged to
	mailArg := ""        // the argument of the last MAIL FROM
	var pending []string // tests of the commands awaiting a reply
	inData := false      // sending message content (after 354)
	used := make([]bool, len(mine))
	// find returns the first test from "from" on that match accepts, else
	// the first unused one before it (a test retried out of order).
	find := func(from int, match func(*audit.TestResult) bool) int {
		for i := from; i < len(mine); i++ {
			if match(mine[i]) {
				used[i] = true
				return i
			}
		}
		for i := 0; i < from && i < len(mine); i++ {
			if !used[i] && match(mine[i]) {
				used[i] = true
				return i
			}
		}
		return -1
	}
	label := func() string {
		if cur < 0 {
			return ""
		}
		return mine[cur].ID
	}
	for i, l := range tr.Lines {
		switch l.Dir {
		case "C":
			if inData {
				labels[i] = label()
				if l.Text == "." {
					inData = false
					pending = append(pending, label())
				}
				continue
			}
			verb := strings.ToUpper(l.Text)
			switch {
			case strings.HasPrefix(verb, "MAIL FROM:"):
				mailArg = l.Text[len("MAIL FROM:"):]
				from := next
				if cur >= 0 && mine[cur].Auth != "" && formIs(mailArg, mine[cur].MailFrom) {
					from = cur // the MAIL FROM of the test that just logged in
				}
				cur = find(from, func(t *audit.TestResult) bool { return formIs(mailArg, t.MailFrom) })
				if cur >= from {
					next = cur + 1
				}
			case strings.HasPrefix(verb, "RCPT TO:"):
				// Tests may share a MAIL FROM form: the RCPT TO form
				// tells them apart.
				arg := l.Text[len("RCPT TO:"):]
				if cur < 0 || !formIs(arg, mine[cur].RcptTo) {
					from := next
					if cur >= 0 {
						from = cur
					}
					if j := find(from, func(t *audit.TestResult) bool {
						return formIs(arg, t.RcptTo) && (t.MailFrom == "" || formIs(mailArg, t.MailFrom))
					}); j >= 0 {
						cur = j
						next = max(next, j+1)
					}
				}
			case strings.HasPrefix(verb, "AUTH "):
				// The bogus login of an A41 test comes before its MAIL
				// FROM: it belongs to the next test that logs in.
				cur = find(next, func(t *audit.TestResult) bool { return t.Auth != "" })
				next = max(next, cur+1)
			case verb == "DATA" || verb == "RSET" || strings.HasPrefix(verb, "BDAT "):
			case isSMTPVerb(verb):
				cur = -1 // EHLO, HELO, STARTTLS, QUIT, NOOP, ...
			}
			// Anything else is a continuation of AUTH: it keeps the
			// current test.
			labels[i] = label()
			pending = append(pending, label())
		case "S":
			if len(pending) > 0 {
				labels[i] = pending[0]
			}
			if replyEnds(l.Text) && len(pending) > 0 {
				inData = strings.HasPrefix(l.Text, "354")
				pending = pending[1:]
			}
		}
	}
	return labels
}

// formIs reports whether a command's argument is the recorded form,
// possibly followed by ESMTP parameters (" SIZE=123").
func formIs(arg, form string) bool {
	if form == "" {
		return false
	}
	return arg == form || strings.HasPrefix(arg, form+" ")
}

// replyEnds reports whether a reply line is the last of its reply: "ddd"
// or "ddd text", not "ddd-text".
func replyEnds(s string) bool {
	return len(s) < 4 || s[3] != '-'
}

// isSMTPVerb reports a command line that starts with a verb of its own
// (as opposed to an AUTH continuation, which is base64 or "*").
func isSMTPVerb(verb string) bool {
	w, _, _ := strings.Cut(verb, " ")
	switch w {
	case "EHLO", "HELO", "LHLO", "STARTTLS", "QUIT", "NOOP", "VRFY", "EXPN", "HELP", "ETRN", "TURN", "XEXCH50":
		return true
	}
	return false
}
