package lab

// The WinRS operations of the WS-Man face (MS-WSMV 3.1.4): Create,
// Command, Send, Receive, Signal and Delete.

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
)

func (w *WSMan) handleSOAP(rw http.ResponseWriter, r *http.Request, env *reqEnvelope) {
	action := strings.TrimSpace(env.Header.Action)
	name, known := shortAction[action]
	if !known {
		w.fault(rw, sealedCall(r, Call{Action: action}), env.Header.MessageID, faultActionNotSupported)
		return
	}
	call := sealedCall(r, Call{Action: name})
	call.ShellID, _ = env.selector("ShellId")
	if rule := w.cfg.Faults.match(name, "", false); rule != nil {
		if !w.inject(rw, r, call, env.Header.MessageID, rule) {
			return
		}
	}
	if strings.TrimSpace(env.Header.ResourceURI) != resourceCmd {
		w.fault(rw, call, env.Header.MessageID, faultResourceURI)
		return
	}
	switch name {
	case "Create":
		w.create(rw, r, env, call)
	case "Command":
		w.command(rw, env, call)
	case "Send":
		w.send(rw, r, env, call)
	case "Receive":
		w.receive(rw, r, env, call)
	case "Signal":
		w.signal(rw, env, call)
	case "Delete":
		w.delete(rw, env, call)
	}
}

// inject applies a fault rule. It returns true when the request should
// then be handled normally (FaultDelay).
func (w *WSMan) inject(rw http.ResponseWriter, r *http.Request, call Call, relatesTo string, rule *FaultRule) bool {
	call.Fault = "injected:" + rule.Kind.String()
	switch rule.Kind {
	case FaultDelay:
		t := time.NewTimer(rule.Delay)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-r.Context().Done():
		case <-w.closing:
		}
		w.record(call)
		return false
	case FaultDrop:
		w.record(call)
		if hj, ok := rw.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return false
			}
		}
		panic(http.ErrAbortHandler) // closes the connection without a response
	case FaultHang:
		w.record(call)
		select {
		case <-r.Context().Done():
		case <-w.closing:
		}
		return false
	case FaultAccessDenied:
		w.fault(rw, call, relatesTo, faultAccessDenied)
		return false
	default:
		w.fault(rw, call, relatesTo, faultInternal)
		return false
	}
}

func (w *WSMan) create(rw http.ResponseWriter, r *http.Request, env *reqEnvelope, call Call) {
	if env.Body.Shell == nil {
		w.fault(rw, call, env.Header.MessageID, faultSchema)
		return
	}
	owner := w.cfg.User
	w.mu.Lock()
	n := 0
	for _, s := range w.shells {
		if s.owner == owner {
			n++
		}
	}
	if n >= w.cfg.MaxShellsPerUser {
		w.mu.Unlock()
		f := faultMaxShells
		f.reason = fmt.Sprintf(f.reason, w.cfg.MaxShellsPerUser)
		w.fault(rw, call, env.Header.MessageID, f)
		return
	}
	id := newGUID()
	w.shells[id] = &wsShell{id: id, owner: owner, codepage: env.option("WINRS_CODEPAGE"), commands: map[string]*wsCommand{}}
	w.mu.Unlock()
	call.ShellID = id
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	clientIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	body := `<x:ResourceCreated><a:Address>` + esc(scheme+"://"+r.Host+"/wsman") + `</a:Address><a:ReferenceParameters>` +
		`<w:ResourceURI>` + resourceCmd + `</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">` + id +
		`</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>` +
		`<rsp:Shell><rsp:ShellId>` + id + `</rsp:ShellId><rsp:ResourceUri>` + resourceCmd + `</rsp:ResourceUri>` +
		`<rsp:Owner>` + esc(owner) + `</rsp:Owner><rsp:ClientIP>` + esc(clientIP) + `</rsp:ClientIP>` +
		`<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin</rsp:InputStreams>` +
		`<rsp:OutputStreams>stdout stderr</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>` +
		`<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>`
	w.reply(rw, call, env.Header.MessageID, "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse", body)
}

// lookupShell finds the shell named by the ShellId selector; w.mu held.
func (w *WSMan) lookupShell(env *reqEnvelope) (*wsShell, *wsFault) {
	id, ok := env.selector("ShellId")
	if !ok || id == "" {
		f := faultNoShellSelector
		return nil, &f
	}
	s := w.shells[strings.ToUpper(id)]
	if s == nil {
		f := faultShellNotFound
		f.reason = fmt.Sprintf(f.reason, id)
		return nil, &f
	}
	return s, nil
}

// lockShell takes w.mu and finds the request's shell. When there is none
// it answers the fault, releases the lock and returns false; otherwise the
// caller holds w.mu.
func (w *WSMan) lockShell(rw http.ResponseWriter, env *reqEnvelope, call Call) (*wsShell, bool) {
	w.mu.Lock()
	s, f := w.lookupShell(env)
	if f != nil {
		w.mu.Unlock()
		w.fault(rw, call, env.Header.MessageID, *f)
		return nil, false
	}
	return s, true
}

func (w *WSMan) command(rw http.ResponseWriter, env *reqEnvelope, call Call) {
	cl := env.Body.CommandLine
	if cl == nil {
		w.fault(rw, call, env.Header.MessageID, faultSchema)
		return
	}
	// WinRS joins the command and its arguments with spaces into the
	// command line given to cmd.exe (WINRS_SKIP_CMD_SHELL=FALSE).
	line := strings.TrimSpace(cl.Command)
	for _, a := range cl.Arguments {
		line += " " + a
	}
	s, ok := w.lockShell(rw, env, call)
	if !ok {
		return
	}
	console := !strings.EqualFold(env.option("WINRS_CONSOLEMODE_STDIN"), "FALSE")
	c := &wsCommand{id: newGUID(), line: line, needsStdin: readsStdin(line), console: console, changed: make(chan struct{})}
	s.commands[c.id] = c
	if !c.needsStdin {
		w.startLocked(s, c)
	}
	w.mu.Unlock()
	call.CommandID = c.id
	w.reply(rw, call, env.Header.MessageID, nsShell+"/CommandResponse",
		`<rsp:CommandResponse><rsp:CommandId>`+c.id+`</rsp:CommandId></rsp:CommandResponse>`)
}

// startLocked runs c in the background; w.mu held.
func (w *WSMan) startLocked(s *wsShell, c *wsCommand) {
	c.started = true
	stdin := append([]byte(nil), c.stdin.Bytes()...)
	c.stdin.Reset()
	line := c.line
	run := Run{ShellID: s.id, CommandID: c.id, CommandLine: line, Start: time.Now()}
	if readsStdin(line) {
		if src, params, err := psframe.DecodePayload(stdin); err == nil {
			// Recorded runs feed tests and logs: they never hold the
			// second-hop password.
			run.Params = remediate.RecordedParams(params)
			run.ExplicitHop = params[remediate.HopUserParam] != "" && params[remediate.HopPasswordParam] != ""
			run.Script, _ = ScriptName(src)
		}
	}
	c.script = run.Script
	proc := Process{CodePage: s.codepage, ConsoleStdin: c.console, Language: w.cfg.Language, Replay: w.cfg.Replay,
		Conditions: w.cfg.Conditions, EnvelopeKB: w.cfg.MaxEnvelopeSize / 1024}
	// Every WS-Man logon is a network logon without delegation (NTLM,
	// Basic, Kerberos without a forwarded TGT): the process holds no
	// network credentials, so doctor.ps1's own LDAP read fails too
	// (secondhop.go, kerberos.go).
	proc.Conditions.NoSecondHop = true
	w.commands.Add(1)
	go func() {
		defer w.commands.Done()
		stdout, stderr, code, hang := runProcess(w.host, proc, line, stdin)
		if hang {
			// The process never ends by itself: wait for a Signal, the
			// shell's deletion or the server's end (they mark c done).
			w.mu.Lock()
			for !c.done && !w.closed {
				ch := c.changed
				w.mu.Unlock()
				select {
				case <-ch:
				case <-w.closing:
				}
				w.mu.Lock()
			}
			run.End, run.ExitCode, run.Hung = time.Now(), exitCtrlC, true
			w.runs = appendBounded(w.runs, run, maxRuns)
			w.mu.Unlock()
			if w.cfg.OnRun != nil {
				w.cfg.OnRun(run)
			}
			return
		}
		run.End = time.Now()
		run.Stdout, run.Stderr, run.ExitCode = stdout, stderr, code
		if w.cfg.OnRun != nil {
			w.cfg.OnRun(run)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.runs = appendBounded(w.runs, run, maxRuns)
		if c.done {
			return // terminated meanwhile: the output is lost, as on Windows
		}
		c.stdout, c.stderr, c.exitCode, c.done = stdout, stderr, code, true
		c.notify()
	}()
}

func (w *WSMan) send(rw http.ResponseWriter, r *http.Request, env *reqEnvelope, call Call) {
	if env.Body.Send == nil || len(env.Body.Send.Streams) == 0 {
		w.fault(rw, call, env.Header.MessageID, faultSchema)
		return
	}
	s, ok := w.lockShell(rw, env, call)
	if !ok {
		return
	}
	var (
		completed *wsCommand
		script    string
	)
	for _, st := range env.Body.Send.Streams {
		c := s.commands[strings.ToUpper(st.CommandID)]
		call.CommandID = st.CommandID
		// A terminated command, or one interrupted (ctrl_c) before its
		// stdin was complete, has no process left to take input.
		if c == nil || c.terminated || (c.done && !c.started) {
			w.mu.Unlock()
			w.fault(rw, call, env.Header.MessageID, faultInvalidParameter)
			return
		}
		if st.Name != "stdin" || c.stdinDone {
			w.mu.Unlock()
			w.fault(rw, call, env.Header.MessageID, faultInvalidParameter)
			return
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(st.Data))
		if err != nil || c.stdin.Len()+len(data) > maxStdin {
			w.mu.Unlock()
			w.fault(rw, call, env.Header.MessageID, faultInvalidParameter)
			return
		}
		if !c.started {
			c.stdin.Write(data)
		}
		if st.End == "true" || st.End == "1" {
			c.stdinDone = true
			call.End = true
			if c.needsStdin && !c.started {
				completed = c
				if src, _, err := psframe.DecodePayload(c.stdin.Bytes()); err == nil {
					script, _ = ScriptName(src)
				}
			}
		}
	}
	w.mu.Unlock()
	call.Script = script
	if completed != nil && script != "" {
		if rule := w.cfg.Faults.match("Send", script, false); rule != nil {
			if !w.inject(rw, r, call, env.Header.MessageID, rule) {
				return
			}
		}
		if rule := w.cfg.Faults.match("Receive", script, true); rule != nil {
			w.mu.Lock()
			completed.dropNext = rule
			w.mu.Unlock()
		}
	}
	if completed != nil {
		w.mu.Lock()
		if !completed.started && !completed.done {
			w.startLocked(s, completed)
		}
		w.mu.Unlock()
	}
	w.reply(rw, call, env.Header.MessageID, nsShell+"/SendResponse", `<rsp:SendResponse/>`)
}

func (w *WSMan) receive(rw http.ResponseWriter, r *http.Request, env *reqEnvelope, call Call) {
	if env.Body.Receive == nil {
		w.fault(rw, call, env.Header.MessageID, faultSchema)
		return
	}
	cid := strings.ToUpper(strings.TrimSpace(env.Body.Receive.DesiredStream.CommandID))
	call.CommandID = cid
	wait := parseDuration(env.Header.OperationTimeout, 60*time.Second)
	if wait > w.cfg.MaxOperationTimeout {
		wait = w.cfg.MaxOperationTimeout
	}
	// The response must fit the client's MaxEnvelopeSize: base64 grows
	// output by 4/3, and the envelope needs room for itself.
	budget := w.cfg.MaxEnvelopeSize
	if n, err := strconv.Atoi(strings.TrimSpace(env.Header.MaxEnvelopeSize)); err == nil && n > 0 && n < budget {
		budget = n
	}
	budget = (budget - 4096) * 3 / 4
	if budget < 1024 {
		budget = 1024
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var c *wsCommand
	for {
		s, ok := w.lockShell(rw, env, call)
		if !ok {
			return
		}
		// A terminated command no longer exists, but a Receive that was
		// already waiting when the signal came keeps its command and gets
		// its final state.
		if c == nil {
			if c = s.commands[cid]; c == nil {
				w.mu.Unlock()
				w.fault(rw, call, env.Header.MessageID, faultInvalidParameter)
				return
			}
		}
		call.Script = c.script
		if c.done && c.dropNext != nil {
			rule := c.dropNext
			c.dropNext = nil
			w.mu.Unlock()
			if !w.inject(rw, r, call, env.Header.MessageID, rule) {
				return
			}
			continue // FaultDelay: then answer normally
		}
		if len(c.stdout) > 0 || len(c.stderr) > 0 || c.done {
			body := w.receiveBodyLocked(c, budget)
			w.mu.Unlock()
			w.reply(rw, call, env.Header.MessageID, nsShell+"/ReceiveResponse", body)
			return
		}
		changed := c.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			w.fault(rw, call, env.Header.MessageID, faultTimedOut)
			return
		case <-r.Context().Done():
			call.Fault = "client-gone"
			w.record(call)
			return
		case <-w.closing:
			call.Fault = "server-closed"
			w.record(call)
			return
		}
	}
}

// receiveBodyLocked takes up to budget bytes of output and, once all
// output is taken from a finished command, reports Done with the exit
// code (pywinrm requires ExitCode with Done: docs/winrm.md §2.4); w.mu held.
func (w *WSMan) receiveBodyLocked(c *wsCommand, budget int) string {
	var b strings.Builder
	b.WriteString(`<rsp:ReceiveResponse>`)
	take := func(name string, buf *[]byte) {
		if len(*buf) == 0 || budget <= 0 {
			return
		}
		n := min(len(*buf), budget)
		fmt.Fprintf(&b, `<rsp:Stream Name="%s" CommandId="%s">%s</rsp:Stream>`, name, c.id, base64.StdEncoding.EncodeToString((*buf)[:n]))
		*buf = (*buf)[n:]
		budget -= n
	}
	take("stdout", &c.stdout)
	take("stderr", &c.stderr)
	if c.done && len(c.stdout) == 0 && len(c.stderr) == 0 {
		fmt.Fprintf(&b, `<rsp:Stream Name="stdout" CommandId="%s" End="true"></rsp:Stream>`, c.id)
		fmt.Fprintf(&b, `<rsp:Stream Name="stderr" CommandId="%s" End="true"></rsp:Stream>`, c.id)
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>`, c.id, stateDone, c.exitCode)
	} else {
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"/>`, c.id, stateRunning)
	}
	b.WriteString(`</rsp:ReceiveResponse>`)
	return b.String()
}

func (w *WSMan) signal(rw http.ResponseWriter, env *reqEnvelope, call Call) {
	sig := env.Body.Signal
	if sig == nil {
		w.fault(rw, call, env.Header.MessageID, faultSchema)
		return
	}
	call.CommandID = sig.CommandID
	s, ok := w.lockShell(rw, env, call)
	if !ok {
		return
	}
	c := s.commands[strings.ToUpper(sig.CommandID)]
	if c == nil || c.terminated {
		w.mu.Unlock()
		w.fault(rw, call, env.Header.MessageID, faultInvalidParameter)
		return
	}
	switch strings.TrimSpace(sig.Code) {
	case signalTerminate:
		// MS-WSMV 3.1.4.12: after terminate the command no longer exists.
		// masterzen and pywinrm send it after every command, also when
		// it is done (MS-WSMV 3.1.4.14 asks for it).
		if !c.done {
			c.exitCode, c.done = exitCtrlC, true
		}
		c.terminated = true
		delete(s.commands, c.id)
		c.notify()
	case signalCtrlC, signalCtrlBrk:
		if !c.done {
			c.exitCode, c.done = exitCtrlC, true
			c.notify()
		}
	default:
		w.mu.Unlock()
		w.fault(rw, call, env.Header.MessageID, faultInvalidParameter)
		return
	}
	w.mu.Unlock()
	w.reply(rw, call, env.Header.MessageID, nsShell+"/SignalResponse", `<rsp:SignalResponse/>`)
}

func (w *WSMan) delete(rw http.ResponseWriter, env *reqEnvelope, call Call) {
	s, ok := w.lockShell(rw, env, call)
	if !ok {
		return
	}
	delete(w.shells, s.id)
	for _, c := range s.commands {
		if !c.done {
			c.exitCode, c.done = exitCtrlC, true
		}
		c.terminated = true
		c.notify()
	}
	w.mu.Unlock()
	w.reply(rw, call, env.Header.MessageID, "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse", "")
}
