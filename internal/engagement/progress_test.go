package engagement

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

// The bar says what the in-flight bound is doing while targets remain.
func TestProgressBarConcurrency(t *testing.T) {
	var buf bytes.Buffer
	opts := audit.Options{Targets: []string{"a.example", "b.example"}, Progress: &buf}
	finish := attachProgress(&opts, &buf)
	opts.OnConcurrency(audit.Concurrency{Limit: 512, Max: 512})
	time.Sleep(120 * time.Millisecond)
	opts.OnTarget(0, audit.TargetResult{Target: "a.example"})
	if !strings.HasSuffix(strings.TrimRight(buf.String(), " "), "; up to 512 endpoints at once") {
		t.Errorf("bar %q does not give the bound", buf.String())
	}
	opts.OnConcurrency(audit.Concurrency{Limit: 128, Max: 512, Reason: "backing off: 40 of the last 64 connects timed out"})
	time.Sleep(120 * time.Millisecond)
	opts.OnEndpoint(1, audit.EndpointResult{Verdict: audit.VerdictClosed})
	want := "; up to 128 of 512 endpoints at once (backing off: 40 of the last 64 connects timed out)"
	if last := buf.String()[strings.LastIndex(buf.String(), "\r")+1:]; !strings.HasSuffix(strings.TrimRight(last, " "), want) {
		t.Errorf("bar %q, want it to end with %q", last, want)
	}
	opts.OnTarget(1, audit.TargetResult{Target: "b.example"})
	finish()
	if last := buf.String()[strings.LastIndex(buf.String(), "\r")+1:]; strings.Contains(last, "at once") {
		t.Errorf("finished bar still gives the bound: %q", last)
	}
}
