package lab

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/templates"
)

func TestDirectoryAccepts(t *testing.T) {
	d := Directory{User: `CORP\Administrator`, Password: "pw"}
	tests := []struct {
		user, pass string
		want       bool
	}{
		{`CORP\Administrator`, "pw", true},
		{`corp\administrator`, "pw", true},
		{`Administrator@corp.example`, "pw", true},
		{`Administrator`, "pw", true},
		{`CORP\Administrator`, "PW", false},
		{`OTHER\Administrator`, "pw", false},
		{`CORP\Guest`, "pw", false},
		{``, "", false},
	}
	for _, tc := range tests {
		if got := d.accepts(tc.user, tc.pass); got != tc.want {
			t.Errorf("accepts(%q, %q) = %v, want %v", tc.user, tc.pass, got, tc.want)
		}
	}
	// A local account (no domain) is unknown to Active Directory.
	if local := directoryFor("Administrator", "pw"); local.accepts("Administrator", "pw") {
		t.Error("a local account crossed the second hop")
	}
	if dom := directoryFor(`CORP\Administrator`, "pw"); !dom.accepts(`CORP\Administrator`, "pw") {
		t.Error("the domain account was refused")
	}
}

// The host never sees the hop credential, and scripts that need no
// second hop never get it (the IIS scripts refuse unexpected parameters).
func TestHopCredentialOnlyWhereNeeded(t *testing.T) {
	for _, n := range templates.ScriptNames() {
		p := map[string]string{}
		remediate.AddHopParams(p, n, remediate.HopCredential{User: "u", Password: "p"})
		if got := len(p) > 0; got != remediate.ScriptNeedsHop(n) {
			t.Errorf("%s: hop parameters added %v", n, got)
		}
	}
	clean, o := splitHop(map[string]string{"target": "ad", remediate.HopUserParam: DefaultDirectory.User,
		remediate.HopPasswordParam: DefaultDirectory.Password}, DefaultDirectory)
	if o != hopExplicit || len(clean) != 1 || clean["target"] != "ad" {
		t.Errorf("splitHop = %v, %v", clean, o)
	}
	h := Exchange2016OpenCustomConnector()
	if _, err := (&DirectRunner{Host: h}).Run(context.Background(), remediate.ExchangeWriteScript,
		exOpParams([]exOp{{Kind: exOpSetDomain, Identity: LabExchangeDomain, DomainType: "Authoritative"}})); err != nil {
		t.Fatal(err)
	}
	for _, w := range h.Writes() {
		for k, v := range w {
			if strings.HasPrefix(k, "_hop") || strings.HasPrefix(k, remediate.SecretParamPrefix) || v == DefaultDirectory.Password {
				t.Errorf("the host saw %s", k)
			}
		}
	}
}

// Over WS-Man, through the real client sealing NTLM on plain HTTP, every
// platform passes InspectHost with the WinRM account as the explicit
// credential; the recorded runs say whether the credential came and never
// hold it. The same runner with another hop account is refused as the
// second hop.
func TestWSManSecondHop(t *testing.T) {
	for _, platform := range Platforms() {
		if platform != "iis" && !strings.HasPrefix(platform, "exchange") {
			continue // platforms other tests register
		}
		t.Run(platform, func(t *testing.T) {
			// Prepared as the README asks (WinRM 2.0's quota raised).
			l := startLab(t, Config{Platform: platform, SealedHTTP: true, PrepareHost: true, WinRM: WSManConfig{MaxOperationTimeout: 5 * time.Second}})
			cfg := remediate.WinRMConfig{Host: l.WinRMHost, Port: l.WinRMPort, Auth: remediate.AuthNTLM,
				User: l.User, Password: l.Password, OperationTimeout: 5 * time.Second}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r, _, err := remediate.NewWinRMRunner(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := remediate.InspectHost(ctx, r, l.WinRMHost, nil); err != nil {
				t.Fatalf("InspectHost: %v", err)
			}
			needs := false
			for _, run := range l.WinRM.Runs() {
				if remediate.ScriptNeedsHop(run.Script) && platform != "iis" {
					needs = true
					if !run.ExplicitHop {
						t.Errorf("%s ran without the credential", run.Script)
					}
				}
				for k, v := range run.Params {
					if remediate.IsSecretParam(k) || strings.Contains(v, l.Password) {
						t.Errorf("run %s recorded %s", run.Script, k)
					}
				}
			}
			if needs != (platform != "iis") {
				t.Errorf("hop scripts ran: %v", needs)
			}
			cfg.HopUser, cfg.HopPassword = `CORP\mallory`, "nope"
			r2, _, err := remediate.NewWinRMRunner(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Close()
			_, err = remediate.InspectHost(ctx, r2, l.WinRMHost, nil)
			if platform == "iis" {
				if err != nil {
					t.Errorf("IIS needs no second hop: %v", err)
				}
				return
			}
			if !errors.Is(err, remediate.ErrSecondHop) {
				t.Errorf("another account: %v, want ErrSecondHop", err)
			}
		})
	}
}

// Over a connection without encryption (plain HTTP, AllowUnencrypted)
// the runner refuses to send the second-hop password at all.
func TestHopPasswordNeverUnencrypted(t *testing.T) {
	l := startLab(t, Config{Platform: "exchange2016", PlainHTTP: true, WinRM: WSManConfig{MaxOperationTimeout: 5 * time.Second}})
	r, _, err := remediate.NewWinRMRunner(remediate.WinRMConfig{Host: l.WinRMHost, Port: l.WinRMPort, Auth: remediate.AuthNTLM,
		User: l.User, Password: l.Password, AllowUnencrypted: true, OperationTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = remediate.InspectHost(context.Background(), r, l.WinRMHost, nil)
	if !errors.Is(err, remediate.ErrConfig) || !strings.Contains(err.Error(), "unencrypted") {
		t.Fatalf("err = %v, want the refusal", err)
	}
	for _, run := range l.WinRM.Runs() {
		if run.ExplicitHop || remediate.ScriptNeedsHop(run.Script) {
			t.Errorf("%s reached the host (explicit hop %v)", run.Script, run.ExplicitHop)
		}
	}
}
