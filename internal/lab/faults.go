package lab

import (
	"sync"
	"time"
)

// FaultKind is a failure the WS-Man face can inject.
type FaultKind int

const (
	// FaultDrop closes the TCP connection without answering, as a crashed
	// WinRM service, a reset by a firewall or a reboot would. The
	// masterzen client reports an EOF error (exit code 16001 on Receive).
	FaultDrop FaultKind = iota + 1
	// FaultInternalError answers HTTP 500 with a w:InternalError SOAP
	// fault (s:Receiver, WSManFault code 0x80004005 E_FAIL).
	FaultInternalError
	// FaultAccessDenied answers HTTP 500 with the fault Windows sends to
	// an authenticated user who is not allowed to use WinRM (s:Sender,
	// w:AccessDenied, WSManFault code 5, "Access is denied.").
	FaultAccessDenied
	// FaultHang never answers: the request is held until the client goes
	// away or the server closes (a hung provider, a stuck Receive).
	FaultHang
	// FaultDelay sleeps FaultRule.Delay, then handles the request normally.
	FaultDelay
)

func (k FaultKind) String() string {
	switch k {
	case FaultDrop:
		return "drop"
	case FaultInternalError:
		return "internal-error"
	case FaultAccessDenied:
		return "access-denied"
	case FaultHang:
		return "hang"
	case FaultDelay:
		return "delay"
	}
	return "unknown"
}

// FaultRule says when to inject a fault.
//
// Without Script, a rule matches requests by Action ("Create", "Command",
// "Send", "Receive", "Signal", "Delete"; "" matches every action) and,
// with Nth > 0, only the Nth such request (counted from 1, per rule).
//
// With Script (a relaylock script name, e.g. "detect"), the rule matches
// the command that runs that script. The script is known only when its
// stdin is complete, so the fault fires on the Send that carries
// End="true", before the script runs; with AfterRun the script runs (and
// changes the host's state) and the fault fires on the next Receive for
// that command instead, so the client never sees the output: the
// "change applied, result lost" case. Action is ignored with Script; Nth
// counts matching commands.
type FaultRule struct {
	Kind     FaultKind
	Action   string
	Nth      int
	Script   string
	AfterRun bool
	Delay    time.Duration // FaultDelay only
	// Times limits how often the rule fires (0: no limit; a rule with
	// Nth fires once).
	Times int
}

// Faults is a set of fault rules. The zero value injects nothing; it is
// safe for concurrent use, so tests may add rules while the lab runs.
type Faults struct {
	mu    sync.Mutex
	rules []*faultState
}

type faultState struct {
	FaultRule
	seen  int
	fired int
}

// Add adds a rule.
func (f *Faults) Add(r FaultRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &faultState{FaultRule: r})
}

// Reset removes every rule.
func (f *Faults) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// Fired reports how many times rules have fired in total.
func (f *Faults) Fired() int {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.rules {
		n += r.fired
	}
	return n
}

// match returns the first rule that fires for a request. With script
// "", only rules without Script are considered (every request is checked
// once that way); with a script name, only that script's rules: before
// the run (the End Send, after=false) or after it (the next Receive,
// after=true).
func (f *Faults) match(action, script string, after bool) *FaultRule {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rules {
		if script == "" {
			if r.Script != "" || (r.Action != "" && r.Action != action) {
				continue
			}
		} else if r.Script != script || r.AfterRun != after {
			continue
		}
		r.seen++
		if r.Nth > 0 && r.seen != r.Nth {
			continue
		}
		if r.Times > 0 && r.fired >= r.Times {
			continue
		}
		r.fired++
		rule := r.FaultRule
		return &rule
	}
	return nil
}
