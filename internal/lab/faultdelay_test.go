package lab

import (
	"testing"
	"time"
)

// TestFaultDelayAfterRun: a FaultDelay armed to fire after a script ran
// delays the next Receive, then answers it normally (it answered nothing,
// an empty HTTP 200, before).
func TestFaultDelayAfterRun(t *testing.T) {
	ts := startWSMan(t, true, WSManConfig{Faults: &Faults{}})
	ts.cfg.Faults.Add(FaultRule{Kind: FaultDelay, Script: "exchange-write", AfterRun: true, Delay: 300 * time.Millisecond, Times: 1})
	c := ts.client(t, clientOpts{})
	start := time.Now()
	_, _, code, err := runScript(t, c, "exchange-write", nil)
	if err != nil || code != 0 {
		t.Fatalf("code %d err %v: want the delayed run to succeed", code, err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("run took %s, less than the delay", d)
	}
	if ts.cfg.Faults.Fired() != 1 {
		t.Errorf("fired %d", ts.cfg.Faults.Fired())
	}
}
