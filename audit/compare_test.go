package audit

import "testing"

func TestCompare(t *testing.T) {
	ep := func(addr string, tls string, tests ...TestResult) EndpointResult {
		return EndpointResult{Address: addr, Port: 25, TLS: tls, Tests: tests}
	}
	before := &Result{Targets: []TargetResult{{Endpoints: []EndpointResult{
		ep("192.0.2.1", "none", TestResult{ID: "C1", Outcome: OutcomeAccepted}, TestResult{ID: "S2", Outcome: OutcomeOpenLikely}),
		ep("2001:db8::1", "none", TestResult{ID: "S2", Outcome: OutcomeOpenLikely}),
	}}}}
	after := &Result{Targets: []TargetResult{{Endpoints: []EndpointResult{
		ep("192.0.2.1", "none", TestResult{ID: "C1", Outcome: OutcomeAccepted}, TestResult{ID: "S2", Outcome: OutcomeDenied}, TestResult{ID: "R13", Outcome: OutcomeDenied}),
	}}}}
	got := Compare(before, after)
	want := []TestDiff{
		{Endpoint: "192.0.2.1:25/none", ID: "C1", Before: OutcomeAccepted, After: OutcomeAccepted},
		{Endpoint: "192.0.2.1:25/none", ID: "S2", Before: OutcomeOpenLikely, After: OutcomeDenied},
		{Endpoint: "192.0.2.1:25/none", ID: "R13", Before: "", After: OutcomeDenied},
		{Endpoint: "[2001:db8::1]:25/none", ID: "S2", Before: OutcomeOpenLikely, After: ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d diffs, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("diff %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if !OutcomeOpenLikely.IsOpen() || OutcomeDenied.IsOpen() || OutcomeNotDelivered.IsOpen() {
		t.Error("IsOpen misclassifies outcomes")
	}
}
