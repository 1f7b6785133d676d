package remediate

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/masterzen/winrm"
)

const fuzzReceiveOK = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header><a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse</a:Action></s:Header><s:Body><rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C1">QkVHSU4geA0K</rsp:Stream><rsp:Stream Name="stdout" CommandId="C1" End="true"></rsp:Stream><rsp:CommandState CommandId="C1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>`

const fuzzFault = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:TimedOut</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">The WS-Management service cannot complete the operation within the time specified in OperationTimeout.</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858793" Machine="h"><f:Message>timeout</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>`

const fuzzCreateOK = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body><x:ResourceCreated xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer"><w:ReferenceParameters><w:SelectorSet><w:Selector Name="ShellId">11111111-2222</w:Selector></w:SelectorSet></w:ReferenceParameters></x:ResourceCreated><rsp:Shell><rsp:ShellId>11111111-2222</rsp:ShellId></rsp:Shell></s:Body></s:Envelope>`

const fuzzBillionLaughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Reason><s:Text>&lol3;</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>`

// FuzzWSManResponse feeds arbitrary HTTP answers (status, content type,
// body) through everything the runner does with a WS-Management answer:
// readResponse and its fault parsing, the Create and Command checks, and
// the library's parsers of Create, Command and Receive answers that the
// runner relies on. None may panic; readResponse fails only with a
// classified error or a FaultError.
func FuzzWSManResponse(f *testing.F) {
	for _, s := range []string{fuzzReceiveOK, fuzzFault, fuzzCreateOK, fuzzBillionLaughs, "", "<", "not xml at all"} {
		f.Add(200, "application/soap+xml;charset=UTF-8", s)
		f.Add(500, "application/soap+xml", s)
	}
	f.Add(401, "text/html", "denied")
	f.Add(200, "text/html", "<html>proxy login</html>")
	f.Fuzz(func(t *testing.T, status int, ctype, body string) {
		if status < 100 || status > 999 {
			status = 200
		}
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}
		resp.Header.Set("Content-Type", ctype)
		cfg := WinRMConfig{Host: "h", HTTPS: true, User: "u"}.WithDefaults()
		out, err := readResponse(cfg, resp)
		if err != nil {
			var fe *FaultError
			var he *hostError
			if !errors.As(err, &fe) && !errors.As(err, &he) {
				t.Fatalf("unclassified error %T: %v", err, err)
			}
			_ = err.Error()
			if fe != nil {
				_ = fe.timedOut()
				_ = pollTimeout(err).Error()
			}
			return
		}
		for _, action := range []string{soapAction(out), "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
			"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"} {
			_ = checkAnswer(action, out)
		}
		// Every transport passes an answer through checkAnswer before the
		// library sees it: what it lets through must not crash the library.
		if err := checkAnswer(".../shell/Receive", out); err != nil {
			var he *hostError
			if !errors.As(err, &he) || !errors.Is(err, ErrWinRM) {
				t.Fatalf("checkAnswer: unclassified error %v", err)
			}
			return
		}
		_, _ = winrm.ParseOpenShellResponse(out)
		_, _ = winrm.ParseExecuteCommandResponse(out)
		var so, se bytes.Buffer
		_, _, _ = winrm.ParseSlurpOutputErrResponse(out, &so, &se)
		if so.Len()+se.Len() > 2*len(out) {
			t.Fatalf("%d bytes of output from a %d-byte answer", so.Len()+se.Len(), len(out))
		}
	})
}
