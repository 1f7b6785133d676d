package report

import (
	"strings"
	"testing"
)

// TestMethodStatesDecisionRules: the Methodology names the decision rules
// audit/verdict.go applies (and the README's verdict rules state), not a
// simplified "2xx open, 5xx closed, 4xx inconclusive".
func TestMethodStatesDecisionRules(t *testing.T) {
	got := defaultTexts().get("method.intro")
	for _, want := range []string{
		"answered DATA with 354",        // depth data: 354 decides
		"recorded as likely",            // ... as likely
		"is recorded as open-potential", // a bare RCPT 250
		"(accepted-as-local)",           // local delivery is not a relay
		"counts as refused",             // ... and counts as closed
		"greylisting",                   // 4xx greylisting ...
		"is tried again",                // ... is retried
		"Relay access denied",           // 4xx with refusal words ...
		"whose own words refuse",        // ... is a refusal
		"postmaster control (C1)",       // closed needs C1
		"never called closed",           // untested is never closed
	} {
		if !strings.Contains(got, want) {
			t.Errorf("method.intro lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "2xx accepted (open)") || strings.Contains(got, "4xx temporary (inconclusive)") {
		t.Errorf("method.intro still states the simplified rule:\n%s", got)
	}
}
