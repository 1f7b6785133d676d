package remediate

import (
	"regexp"
	"strings"

	"github.com/masterzen/simplexml/dom"
	"github.com/masterzen/winrm/soap"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// masterzen/winrm hard-codes two WinRS options that relaylock must set
// otherwise (see package psframe, "How the bootstrap reads stdin" and
// "Code page"): WINRS_CODEPAGE=65001 on every Create, which makes Windows
// before 6.1 return no output, and WINRS_CONSOLEMODE_STDIN=TRUE on every
// Command, under which powershell.exe does not hand stdin to $input.
// setShellOptions rewrites them in a request before it is sent, whatever
// transport sends it (the library's Kerberos transporter serializes the
// message itself, so the message is rewritten, not only its text).
var shellOptionRewrites = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(<[A-Za-z0-9]+:Option Name="WINRS_CODEPAGE"[^>]*>)[^<]*(</)`), "${1}" + psframe.ShellCodePage + "${2}"},
	{regexp.MustCompile(`(<[A-Za-z0-9]+:Option Name="WINRS_CONSOLEMODE_STDIN"[^>]*>)[^<]*(</)`), "${1}" + psframe.ConsoleModeStdin + "${2}"},
}

// reEnvelope splits a serialized message into its root start tag, content
// and end tag.
var reEnvelope = regexp.MustCompile(`(?s)^(<\?xml[^>]*\?>\s*)?<([A-Za-z0-9]+:Envelope)((?:\s+[^\s=>]+="[^"]*")*)\s*>(.*)</([A-Za-z0-9]+:Envelope)>\s*$`)
var reAttr = regexp.MustCompile(`([^\s=]+)="([^"]*)"`)

// shellOptions returns the text of a request with relaylock's WinRS
// options, and whether it changed.
func shellOptions(body string) (string, bool) {
	if !strings.Contains(body, "WINRS_CODEPAGE") && !strings.Contains(body, "WINRS_CONSOLEMODE_STDIN") {
		return body, false
	}
	out := body
	for _, r := range shellOptionRewrites {
		out = r.re.ReplaceAllString(out, r.with)
	}
	return out, out != body
}

// setShellOptions rewrites m in place (see shellOptionRewrites). It
// rebuilds the document as the root element around the rewritten content:
// the dom package writes an element's content verbatim, which is how the
// library itself embeds its CDATA command line.
func setShellOptions(m *soap.SoapMessage) {
	text, changed := shellOptions(m.String())
	if !changed {
		return
	}
	sm := reEnvelope.FindStringSubmatch(text)
	if sm == nil || sm[2] != sm[5] {
		return // not the library's shape: leave it (the lab would refuse the options)
	}
	doc := dom.CreateDocument()
	doc.DocType = sm[1] != ""
	root := dom.CreateElement(sm[2])
	for _, a := range reAttr.FindAllStringSubmatch(sm[3], -1) {
		root.SetAttr(a[1], a[2])
	}
	root.SetContent(sm[4])
	doc.SetRoot(root)
	*m.Doc() = *doc
}
