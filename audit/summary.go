package audit

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// WriteSummary writes the human-readable result: per target its verdict
// and reason, per endpoint (MX host, address:port, TLS) its verdict,
// confirmation and the tests that found it open with their decisive
// reply. Output is deterministic for a given Result; server-supplied text
// is stripped of control characters.
func WriteSummary(w io.Writer, r *Result) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "relaylock audit, %s, depth %s", r.Start.UTC().Format("2006-01-02 15:04:05 UTC"), r.Options.Depth)
	if len(r.Vantage.SourceAddrs) > 0 {
		fmt.Fprintf(bw, ", from %s", strings.Join(r.Vantage.SourceAddrs, " "))
	}
	bw.WriteString("\n")
	for _, t := range r.Targets {
		fmt.Fprintf(bw, "\n%s (%s): %s", safe(t.Target), t.Kind, strings.ToUpper(string(t.Verdict)))
		if t.Reason != "" {
			fmt.Fprintf(bw, ": %s", safe(t.Reason))
		}
		bw.WriteString("\n")
		for _, ep := range t.Endpoints {
			name := ep.MXHost
			if name == "" || name == ep.Address {
				name = "-"
			}
			fmt.Fprintf(bw, "  %s %s tls=%s: %s", safe(name), hostPort(ep.Address, ep.Port), ep.TLS, strings.ToUpper(string(ep.Verdict)))
			if ep.Confirmation != "" {
				fmt.Fprintf(bw, " (%s)", ep.Confirmation)
			}
			if ep.Verdict != VerdictOpen && ep.Reason != "" {
				fmt.Fprintf(bw, ": %s", safe(ep.Reason))
			}
			bw.WriteString("\n")
			for _, id := range ep.Triggers {
				for _, ts := range ep.Tests {
					if ts.ID != id {
						continue
					}
					fmt.Fprintf(bw, "    %s %s: MAIL FROM:%s RCPT TO:%s -> %s\n", ts.ID, ts.Title, safe(ts.MailFrom), safe(ts.RcptTo), safe(ts.Reply.String()))
					if ts.Outcome == OutcomeSubmitted {
						fmt.Fprintf(bw, "      submitted, token %s: check the mailbox %s\n", ts.Token, safe(strings.Trim(ts.RcptTo, "<>")))
					}
				}
			}
			for _, f := range ep.Findings {
				fmt.Fprintf(bw, "    finding: %s\n", safe(f))
			}
			if ep.AcceptAll {
				bw.WriteString("    note: accepts recipients it cannot have (control C2/C3): likely accept-then-bounce; only a delivery check confirms\n")
			}
		}
	}
	fmt.Fprintf(bw, "\noverall: %s\n", strings.ToUpper(string(r.Verdict)))
	if r.Verdict == VerdictOpen {
		bw.WriteString("an open relay lets anyone send mail through the server (CVSS 7.5, as Nessus 10262); see the triggering tests above\n")
	}
	return bw.Flush()
}

// safe makes server-supplied text printable on one line.
func safe(s string) string { return Printable(s) }

// Printable makes text that came from a server or an operator safe to
// print as one line on a terminal or in a CSV cell, and keeps it
// readable: control characters (C0, DEL, C1) become visible Go escapes
// (\t \r \n \x1b \u0085), so a terminal interprets none of them; invalid
// UTF-8 becomes U+FFFD; characters that reorder or hide text (bidi
// controls and the other invisible format characters, Unicode category
// Cf) become <U+202E>. Text without any of these comes back unchanged.
func Printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r >= 0x7f && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		s = s[n:]
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteRune(utf8.RuneError)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		case unicode.Is(unicode.Cf, r):
			fmt.Fprintf(&b, "<U+%04X>", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
