package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit"
)

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	var chained []string
	opts := audit.Options{Targets: []string{"a.example", "b.example"}, Progress: &buf,
		OnTarget: func(i int, tr audit.TargetResult) { chained = append(chained, tr.Target) }}
	finish := attachProgress(&opts, &buf)
	if opts.Progress != nil {
		t.Error("the engine's progress lines stay on under the bar")
	}
	opts.OnEndpoint(0, audit.EndpointResult{Verdict: audit.VerdictOpen})
	opts.OnEndpoint(0, audit.EndpointResult{Verdict: audit.VerdictClosed})
	opts.OnTarget(0, audit.TargetResult{Target: "a.example"})
	time.Sleep(120 * time.Millisecond)
	opts.OnEndpoint(1, audit.EndpointResult{Verdict: audit.VerdictInconclusive})
	opts.OnTarget(1, audit.TargetResult{Target: "b.example"})
	finish()
	out := buf.String()
	if len(chained) != 2 {
		t.Errorf("earlier OnTarget not chained: %v", chained)
	}
	last := out[strings.LastIndex(out, "\r")+1:]
	want := "[########################] 2/2 targets, 3 endpoints: 1 open, 1 closed, 1 inconclusive"
	if !strings.Contains(last, want) || !strings.HasSuffix(last, "\n") {
		t.Errorf("final line %q, want it to contain %q and end the line", last, want)
	}
	if !strings.Contains(out, "[------------------------] 0/2 targets") {
		t.Errorf("no initial empty bar in %q", out)
	}
}
