package remediate

import (
	"encoding/xml"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// PowerShell with redirected streams writes its error, warning and progress
// streams to stderr as serialized objects: a "#< CLIXML" line followed by
// an <Objs> document (MS-PSRP 2.2.5 "Serialization"; seen on every WinRM
// client: pywinrm _clean_error_msg, ansible parse_clixml_stream). Error
// lines are <S S="Error"> elements; characters XML cannot carry are
// escaped as _xHHHH_ (MS-PSRP 2.2.5.3.2, "Encoding strings").

const clixmlHeader = "#< CLIXML"

var reCLIXMLEscape = regexp.MustCompile(`_x([0-9A-Fa-f]{4})_`)

// unescapeCLIXML decodes _xHHHH_ escapes (UTF-16 code units, surrogate
// pairs combined) and drops what is not valid UTF-8.
func unescapeCLIXML(s string) string {
	if !strings.Contains(s, "_x") {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	var units []uint16
	var b strings.Builder
	flush := func() {
		if len(units) > 0 {
			b.WriteString(string(utf16.Decode(units)))
			units = units[:0]
		}
	}
	last := 0
	for _, m := range reCLIXMLEscape.FindAllStringSubmatchIndex(s, -1) {
		if m[0] > last {
			flush()
			b.WriteString(s[last:m[0]])
		}
		v, _ := strconv.ParseUint(s[m[2]:m[3]], 16, 16)
		units = append(units, uint16(v))
		last = m[1]
	}
	flush()
	b.WriteString(s[last:])
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

// CLIXMLMessages turns a PowerShell stderr text into readable messages,
// one per non-empty line: the texts of <S S="Error"> elements of every
// CLIXML document in it (progress records and other streams are dropped,
// and so are the "+ CategoryInfo" / "+ FullyQualifiedErrorId" detail
// lines), plus any plain text outside CLIXML (cmd.exe messages). It never
// fails: malformed XML yields what could be read.
func CLIXMLMessages(stderr string) []string {
	var msgs []string
	add := func(text string) {
		text = strings.ToValidUTF8(text, "\uFFFD")
		for _, line := range strings.Split(strings.ReplaceAll(text, "\r", "\n"), "\n") {
			line = strings.TrimSpace(line)
			switch {
			case line == "":
			case strings.HasPrefix(line, "+ CategoryInfo"), strings.HasPrefix(line, "+ FullyQualifiedErrorId"):
			case strings.Trim(line, "+~ ") == "":
			default:
				msgs = append(msgs, line)
			}
		}
	}
	rest := stderr
	for {
		i := strings.Index(rest, clixmlHeader)
		if i < 0 {
			add(rest)
			return msgs
		}
		add(rest[:i])
		rest = rest[i+len(clixmlHeader):]
		var n int
		var errText string
		errText, n = clixmlErrors(rest)
		add(errText)
		rest = rest[n:]
	}
}

// clixmlErrors reads one <Objs> document from the start of s and returns
// the concatenated error texts and how many bytes it consumed.
func clixmlErrors(s string) (string, int) {
	end := len(s)
	if j := strings.Index(s, clixmlHeader); j >= 0 {
		end = j
	}
	doc := s[:end]
	d := xml.NewDecoder(strings.NewReader(doc))
	d.Strict = false
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	var b strings.Builder
	depthInErr := 0
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depthInErr > 0 {
				depthInErr++
				continue
			}
			if t.Name.Local == "S" {
				for _, a := range t.Attr {
					if a.Name.Local == "S" && a.Value == "Error" {
						depthInErr = 1
					}
				}
			}
		case xml.EndElement:
			if depthInErr > 0 {
				depthInErr--
				if depthInErr == 0 {
					b.WriteString("\n")
				}
			}
		case xml.CharData:
			if depthInErr > 0 {
				b.Write(t)
			}
		}
	}
	text := unescapeCLIXML(b.String())
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	return text, end
}
