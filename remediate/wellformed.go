package remediate

import (
	"strings"

	"github.com/ChrisTrenkamp/goxpath/tree/xmltree"
)

// wellFormed refuses a WS-Management answer the WinRM library cannot
// parse. masterzen/winrm (v0.0.0-20240702205601-3fad6e106085) ignores the
// parse error in ParseSlurpOutputErrResponse and runs XPath on the nil
// document, which panics in a goroutine of its own: a host (or anything
// on the path) answering a Receive with HTTP 200, a SOAP content type and
// a body that is not XML would crash relaylock. The check uses the very
// parser the library uses (goxpath's xmltree, encoding/xml with charset
// labels), so whatever passes it, the library can walk. Go's encoding/xml
// expands no DTD entities, so "billion laughs" documents cost nothing;
// the size is bounded before (maxResponse).
func wellFormed(action, body string) error {
	doc, err := xmltree.ParseXML(strings.NewReader(body))
	if err != nil || doc == nil {
		op := action[strings.LastIndex(action, "/")+1:]
		if op == "" {
			op = "request"
		}
		snippet := strings.ToValidUTF8(body, "?")
		if len(snippet) > 80 {
			snippet = snippet[:80] + "..."
		}
		return kindErr(ErrWinRM, err, "the answer to %s is not XML: %q", op, snippet)
	}
	return nil
}
