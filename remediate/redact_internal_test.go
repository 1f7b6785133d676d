package remediate

import "testing"

// TestRunParamsRedactSecrets: a parameter whose name says it is a secret
// never reaches the evidence, whichever runner recorded it.
func TestRunParamsRedactSecrets(t *testing.T) {
	in := map[string]string{"server": "1", "Password": "s3cret", "winrm_credential": "x", "apitoken": "t", "domain": "example.com", "pwd": "p", "emptypassword": ""}
	got := runParams(in)
	for k, want := range map[string]string{"server": "1", "Password": Redacted, "winrm_credential": Redacted, "apitoken": Redacted, "domain": "example.com", "pwd": Redacted, "emptypassword": ""} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	if in["Password"] != "s3cret" {
		t.Error("the caller's map was changed")
	}
	if runParams(nil) != nil {
		t.Error("no parameters became a map")
	}
}
