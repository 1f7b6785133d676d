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

// EndpointKey is the one identity of an endpoint: the same address
// written another way is the same endpoint; another port or TLS mode is
// not.
func TestEndpointKey(t *testing.T) {
	tests := []struct {
		addr string
		port int
		tls  string
		want string
	}{
		{"192.0.2.1", 25, TLSNone, "192.0.2.1:25/none"},
		{"::ffff:192.0.2.1", 25, TLSNone, "192.0.2.1:25/none"},
		{"2001:DB8:0:0::25", 587, TLSStartTLS, "[2001:db8::25]:587/starttls"},
		{"[2001:db8::25]", 465, TLSImplicit, "[2001:db8::25]:465/implicit"},
		{" MX.Example.COM. ", 25, TLSNone, "mx.example.com:25/none"},
		{"192.0.2.1", 25, "", "192.0.2.1:25/"},
	}
	for _, tc := range tests {
		if got := EndpointKey(EndpointResult{Address: tc.addr, Port: tc.port, TLS: tc.tls}); got != tc.want {
			t.Errorf("EndpointKey(%q, %d, %q) = %q, want %q", tc.addr, tc.port, tc.tls, got, tc.want)
		}
	}
}
