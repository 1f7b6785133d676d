package lab

// SOAP request parsing and the responses and faults of the WS-Man face,
// shaped as Windows sends them (docs/winrm.md §2.4-2.6; MS-WSMV 2.2.4.43).

import (
	"bytes"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// ---- SOAP layer -------------------------------------------------------------

type nameValue struct {
	Name  string `xml:"Name,attr"`
	Value string `xml:",chardata"`
}

type reqEnvelope struct {
	XMLName xml.Name `xml:"http://www.w3.org/2003/05/soap-envelope Envelope"`
	Header  struct {
		Action           string `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing Action"`
		MessageID        string `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing MessageID"`
		ResourceURI      string `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd ResourceURI"`
		OperationTimeout string `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd OperationTimeout"`
		MaxEnvelopeSize  string `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd MaxEnvelopeSize"`
		SelectorSet      struct {
			Selectors []nameValue `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd Selector"`
		} `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd SelectorSet"`
		OptionSet struct {
			Options []nameValue `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd Option"`
		} `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd OptionSet"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Header"`
	Body struct {
		Shell *struct {
			InputStreams  string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell InputStreams"`
			OutputStreams string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell OutputStreams"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Shell"`
		CommandLine *struct {
			Command   string   `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Command"`
			Arguments []string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Arguments"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell CommandLine"`
		Send *struct {
			Streams []struct {
				Name      string `xml:"Name,attr"`
				CommandID string `xml:"CommandId,attr"`
				End       string `xml:"End,attr"`
				Data      string `xml:",chardata"`
			} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Stream"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Send"`
		Receive *struct {
			DesiredStream struct {
				CommandID string `xml:"CommandId,attr"`
				Streams   string `xml:",chardata"`
			} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell DesiredStream"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Receive"`
		Signal *struct {
			CommandID string `xml:"CommandId,attr"`
			Code      string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Code"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Signal"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
}

func (e *reqEnvelope) selector(name string) (string, bool) {
	for _, s := range e.Header.SelectorSet.Selectors {
		if s.Name == name {
			return strings.TrimSpace(s.Value), true
		}
	}
	return "", false
}

func (e *reqEnvelope) option(name string) string {
	for _, o := range e.Header.OptionSet.Options {
		if o.Name == name {
			return strings.TrimSpace(o.Value)
		}
	}
	return ""
}

// ---- responses --------------------------------------------------------------

const envelopeOpen = `<s:Envelope xml:lang="en-US" xmlns:s="` + nsSOAP + `" xmlns:a="` + nsAddressing +
	`" xmlns:x="` + nsTransfer + `" xmlns:w="` + nsWSMan + `" xmlns:rsp="` + nsShell +
	`" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">`

func responseHeader(action, relatesTo string) string {
	return `<s:Header><a:Action>` + action + `</a:Action><a:MessageID>uuid:` + newGUID() + `</a:MessageID>` +
		`<a:To>` + anonymousRole + `</a:To><a:RelatesTo>` + esc(strings.TrimSpace(relatesTo)) + `</a:RelatesTo></s:Header>`
}

func (w *WSMan) reply(rw http.ResponseWriter, call Call, relatesTo, action, body string) {
	call.Status = http.StatusOK
	w.record(call)
	var b strings.Builder
	b.WriteString(envelopeOpen)
	b.WriteString(responseHeader(action, relatesTo))
	if body == "" {
		b.WriteString(`<s:Body></s:Body>`)
	} else {
		b.WriteString(`<s:Body>` + body + `</s:Body>`)
	}
	b.WriteString(`</s:Envelope>`)
	writeSOAP(rw, http.StatusOK, b.String())
}

func writeSOAP(rw http.ResponseWriter, status int, s string) {
	rw.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	rw.Header().Set("Content-Length", strconv.Itoa(len(s)))
	rw.WriteHeader(status)
	_, _ = io.WriteString(rw, s)
}

// wsFault is a WS-Management fault (MS-WSMV 2.2.4.43; DSP0226 §14).
type wsFault struct {
	code    string // s:Sender or s:Receiver
	subcode string // w:..., a:...
	reason  string
	wsman   uint64 // WSManFault Code (a Win32 or WinRM error number)
}

// Faults as Windows words them. Reasons end with a space, as Windows'
// messages do.
var (
	// docs/winrm.md §2.5; masterzen fixture_test.go operationTimeoutResponse.
	faultTimedOut = wsFault{"s:Receiver", "w:TimedOut",
		"The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ", 2150858793}
	// WinRb/WinRM#253, jborean93/pypsrp#22 (captured from Windows).
	faultShellNotFound = wsFault{"s:Sender", "w:InvalidSelectors",
		"The request for the Windows Remote Shell with ShellId %s failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. Provide the correct ShellId or create a new shell and retry the operation. ", 2150858843}
	// Openwsman/openwsman#83 (winrs against Windows 7).
	faultNoShellSelector = wsFault{"s:Sender", "w:InvalidSelectors",
		"The Windows Remote Shell cannot process the request because it requires the following selector: ShellId. ", 2150858842}
	// masterzen/winrm#80 (a captured Windows fault): ERROR_INVALID_PARAMETER.
	faultInvalidParameter = wsFault{"s:Sender", "w:InvalidParameter", "The parameter is incorrect. ", 87}
	// Vagrant/test-kitchen reports (hashicorp/vagrant#7489): 0x803381A5.
	faultMaxShells = wsFault{"s:Receiver", "w:InternalError",
		"The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. ", 2150859173}
	// pypsrp reports "(Code: 5, ..., Reason: Access is denied.)" for a
	// user not allowed to use WinRM; DSP0226 wsman:AccessDenied.
	faultAccessDenied = wsFault{"s:Sender", "w:AccessDenied", "Access is denied. ", 5}
	faultInternal     = wsFault{"s:Receiver", "w:InternalError",
		"The WS-Management service cannot process the request. The service encountered an internal error. ", 2147500037}
	faultActionNotSupported = wsFault{"s:Sender", "a:ActionNotSupported",
		"The WS-Management service cannot process the request because the action is not supported by the resource. ", 2150858754}
	faultResourceURI = wsFault{"s:Sender", "w:DestinationUnreachable",
		"The WS-Management service cannot process the request. The resource URI is not supported by the lab: only " + resourceCmd + " is. ", 2150858770}
	faultSchema = wsFault{"s:Sender", "w:SchemaValidationError",
		"The SOAP XML in the message does not match the corresponding XML schema definition. Change the XML and retry. ", 2150858817}
)

func (w *WSMan) fault(rw http.ResponseWriter, call Call, relatesTo string, f wsFault) {
	call.Status = http.StatusInternalServerError
	if call.Fault == "" {
		call.Fault = f.subcode
	}
	w.record(call)
	s := envelopeOpen + responseHeader(actionFault, relatesTo) +
		`<s:Body><s:Fault><s:Code><s:Value>` + f.code + `</s:Value><s:Subcode><s:Value>` + f.subcode +
		`</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">` + esc(f.reason) + `</s:Text></s:Reason>` +
		`<s:Detail><f:WSManFault xmlns:f="` + nsWSManFault + `" Code="` + strconv.FormatUint(f.wsman, 10) +
		`" Machine="` + esc(w.cfg.Machine) + `"><f:Message>` + esc(f.reason) + `</f:Message></f:WSManFault></s:Detail>` +
		`</s:Fault></s:Body></s:Envelope>`
	writeSOAP(rw, http.StatusInternalServerError, s)
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// newGUID returns a random (version 4) GUID in the upper-case form
// Windows uses for ShellId and CommandId.
func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

// parseDuration parses an xs:duration as WS-Management uses it for
// OperationTimeout ("PT60S", "PT60.000S", "PT1M30S", "P0DT0H0M20S").
func parseDuration(s string, def time.Duration) time.Duration {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "P") {
		return def
	}
	var d time.Duration
	inTime := false
	num := ""
	for _, r := range s[1:] {
		switch {
		case r == 'T':
			inTime = true
		case (r >= '0' && r <= '9') || r == '.':
			num += string(r)
		default:
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return def
			}
			num = ""
			var unit time.Duration
			switch {
			case r == 'D' && !inTime:
				unit = 24 * time.Hour
			case r == 'H' && inTime:
				unit = time.Hour
			case r == 'M' && inTime:
				unit = time.Minute
			case r == 'S' && inTime:
				unit = time.Second
			default:
				return def
			}
			d += time.Duration(f * float64(unit))
		}
	}
	if num != "" || d <= 0 {
		return def
	}
	return d
}

// commandLineTooLong reports whether cmd.exe would refuse line: its limit
// is 8191 characters (UTF-16 code units) (docs/winrm.md §0.5).
func commandLineTooLong(line string) bool {
	return len(line) > MaxCommandLine && len(utf16.Encode([]rune(line))) > MaxCommandLine
}
