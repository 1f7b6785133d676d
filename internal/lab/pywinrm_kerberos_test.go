package lab

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/internal/needs"
)

// TestPywinrmKerberos cross-checks the Kerberos acceptor with an
// independent client: Debian's python3-winrm with
// python3-requests-kerberos, i.e. MIT GSSAPI (a bare Kerberos token, not
// SPNEGO, with mutual authentication required), after MIT kinit put a
// TGT into a temp credential cache (password on kinit's stdin; the
// Python process never sees it). pywinrm must accept the lab's AP-REP
// and run commands; with a keytab that no longer holds the service's
// key (exported before a re-key) it must get 401. Asked to delegate
// (with a forwardable TGT), MIT puts a KRB-CRED into the authenticator,
// and the lab recognises it as a delegated logon; relaylock's own client
// never does (TestKerberosAcceptorEveryPlatform).
func TestPywinrmKerberos(t *testing.T) {
	requireKDC(t)
	if err := exec.Command(debianPython, "-c", "import winrm, requests_kerberos, kerberos").Run(); err != nil {
		needs.Missing(t, "python3-requests-kerberos", "not importable by "+debianPython+" ("+err.Error()+"): apt-get install python3-winrm python3-requests-kerberos (.ci/setup.d/70-kerberos.sh)")
	}
	for _, tc := range []struct {
		name      string
		staleKeys bool
		delegate  bool
	}{
		{"keytab matches", false, false},
		{"wrong keytab", true, false},
		{"delegation asked", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kdc := newLabKDC(t)
			cfg := Config{Platform: "exchange2016", Kerberos: &KerberosConfig{}}
			if tc.staleKeys {
				// The lab gets the service's keytab, then the KDC re-keys
				// the service: the keytab no longer decrypts its tickets.
				cfg.Kerberos.KeytabFor = func(spn string) ([]byte, error) {
					kt, err := kdc.ServiceKeytab(context.Background(), spn)
					if err != nil {
						return nil, err
					}
					return kt, kdc.Rekey(context.Background(), spn)
				}
			}
			kl := startKerberosLabWith(t, kdc, cfg)
			dir := t.TempDir()
			ccache := filepath.Join(dir, "ccache")
			var opts []string
			if tc.delegate {
				opts = []string{"-f"} // a forwardable TGT
			}
			if err := kl.kdc.Kinit(context.Background(), "Administrator@"+kl.kdc.Realm, krbTestPassword, ccache, opts...); err != nil {
				t.Fatal(err)
			}
			delegate := "no"
			if tc.delegate {
				delegate = "yes"
			}
			out := runPyWinRM(t, dir, []string{"KRB5_CONFIG=" + kl.kdc.Krb5Conf, "KRB5CCNAME=FILE:" + ccache},
				"pywinrm_kerberos.py", kl.WinRMURL, kl.ca, kl.Hostname, delegate)
			var r struct {
				Hostname, Echo, Error string
				Code                  int
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			logons := kl.WinRM.KerberosLogons()
			if tc.staleKeys {
				if !strings.HasPrefix(r.Error, "InvalidCredentialsError") || len(logons) != 0 {
					t.Fatalf("with a stale keytab: %+v, logons %+v", r, logons)
				}
				bad := 0
				for _, c := range kl.WinRM.Calls() {
					if c.Fault == faultKrbTicket {
						bad++
					}
				}
				if bad == 0 {
					t.Errorf("no request refused as %s: %+v", faultKrbTicket, kl.WinRM.Calls())
				}
				return
			}
			if r.Error != "" || r.Hostname != "EX1\r\n" || r.Code != 0 || r.Echo != "kerberos ok\r\n" {
				t.Fatalf("pywinrm over Kerberos: %+v", r)
			}
			if len(logons) == 0 {
				t.Fatal("no Kerberos logon recorded")
			}
			for _, lo := range logons {
				if !lo.Mutual || lo.Delegated != tc.delegate || lo.SPNEGO || !strings.EqualFold(lo.Client, "Administrator@"+kl.kdc.Realm) {
					t.Errorf("logon %+v", lo)
				}
			}
		})
	}
}
