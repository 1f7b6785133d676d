package engagement

import (
	"slices"
	"testing"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/report/evidence"
)

// The endpoints of an audit that belong to a WinRM host: by MX host name,
// by address, by the audit's own DNS answers for the name; never by a
// resolver.
func TestHostEndpoints(t *testing.T) {
	r := &audit.Result{Targets: []audit.TargetResult{{
		Target: "corp.example", Domain: "corp.example", Kind: "domain",
		MX: []audit.MXHost{
			{Host: "mail.corp.example", Addresses: []string{"192.0.2.25"}, CNAMEs: []string{"smtp1.corp.example"}},
			{Host: "mx2.corp.example", Addresses: []string{"2001:db8::25"}},
		},
		DNS: []audit.DNSQuery{
			{Name: "exch01.corp.example.", Type: "A", Answers: []string{"exch01.corp.example.\t300\tIN\tA\t192.0.2.25"}},
			{Name: "other.corp.example.", Type: "A", Answers: []string{"other.corp.example. 300 IN A 198.51.100.9"}},
		},
		Endpoints: []audit.EndpointResult{
			{MXHost: "mail.corp.example", Address: "192.0.2.25", Port: 25},
			{MXHost: "mail.corp.example", Address: "192.0.2.25", Port: 587},
			{MXHost: "mx2.corp.example", Address: "2001:db8::25", Port: 25},
		},
	}}}
	tests := []struct {
		host string
		want []string
	}{
		{"mail.corp.example", []string{"192.0.2.25:25", "192.0.2.25:587"}},
		{"MAIL.corp.example.", []string{"192.0.2.25:25", "192.0.2.25:587"}},
		{"192.0.2.25", []string{"192.0.2.25:25", "192.0.2.25:587"}},
		{"exch01.corp.example", []string{"192.0.2.25:25", "192.0.2.25:587"}}, // A answer in the audit
		{"smtp1.corp.example", []string{"192.0.2.25:25", "192.0.2.25:587"}},  // CNAME the MX followed
		{"[2001:db8::25]", []string{"[2001:db8::25]:25"}},
		{"other.corp.example", nil}, // resolved, but to an address never probed
		{"unknown.corp.example", nil},
	}
	for _, tc := range tests {
		eps, domain := hostEndpoints(r, tc.host)
		if !slices.Equal(eps, tc.want) {
			t.Errorf("%s: %q, want %q", tc.host, eps, tc.want)
		}
		if len(tc.want) > 0 && domain != "corp.example" {
			t.Errorf("%s: domain %q", tc.host, domain)
		}
	}
	// Only first-look audits count: a re-test (or remediate's own probe of
	// a host) is not what the audit found.
	b := &evidence.Bundle{Audits: []evidence.AuditRun{
		{Purpose: "audit", Result: r},
		{Purpose: "audit", Host: "192.0.2.25", Result: &audit.Result{Targets: []audit.TargetResult{{Target: "192.0.2.25",
			Endpoints: []audit.EndpointResult{{MXHost: "192.0.2.25", Address: "192.0.2.25", Port: 2525}}}}}},
	}}
	if eps, _, i := auditedEndpoints(b, "192.0.2.25"); i != 0 || len(eps) != 2 {
		t.Errorf("auditedEndpoints: %q from run %d, want the first look (run 0)", eps, i)
	}
}
