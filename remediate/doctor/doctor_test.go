package doctor_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/doctor"
)

func startLab(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	if cfg.WinRM.MaxOperationTimeout == 0 {
		cfg.WinRM.MaxOperationTimeout = 2 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l, err := lab.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func labConfig(t *testing.T, l *lab.Lab) remediate.WinRMConfig {
	t.Helper()
	cfg := remediate.WinRMConfig{Host: l.WinRMHost, Port: l.WinRMPort, HTTPS: l.HTTPS, Auth: remediate.AuthNTLM,
		User: l.User, Password: l.Password, OperationTimeout: 2 * time.Second, ConnectTimeout: 3 * time.Second}
	if l.HTTPS {
		cfg.CACertFile = writeFile(t, "ca.pem", l.CACertPEM)
	}
	return cfg
}

func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

// TestDoctorCatchesEachFault: a healthy lab host passes every check that
// applies; each lab fault fails the check that names it, with a fix.
func TestDoctorCatchesEachFault(t *testing.T) {
	otherCA, err := lab.NewCertificate("other.example")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		lab    func() lab.Config
		cfg    func(t *testing.T, c *remediate.WinRMConfig)
		fail   []string // the checks that must fail
		fixHas string   // text the first failing check's fix must contain
		pass   []string // checks that must pass
		skip   []string // checks that must be skipped
	}{
		{name: "healthy IIS", lab: func() lab.Config { return lab.Config{Platform: "iis"} },
			pass: []string{doctor.CheckListener, doctor.CheckCertificate, doctor.CheckAuth, doctor.CheckLogin, doctor.CheckPowerShell,
				doctor.CheckStdin, doctor.CheckMemoryQuota, doctor.CheckEnvelope, doctor.CheckWebWMI, doctor.CheckMetabase}},
		{name: "healthy Exchange 2016", lab: func() lab.Config { return lab.Config{Platform: "exchange2016"} },
			pass: []string{doctor.CheckStdin, doctor.CheckMemoryQuota, doctor.CheckExchange, doctor.CheckSecondHop}},
		{name: "healthy Exchange 2003", lab: func() lab.Config { return lab.Config{Platform: "exchange2003"} },
			pass: []string{doctor.CheckPowerShell, doctor.CheckStdin, doctor.CheckWebWMI, doctor.CheckSecondHop}},
		{name: "no listener", lab: func() lab.Config { return lab.Config{Platform: "iis"} },
			cfg:  func(t *testing.T, c *remediate.WinRMConfig) { c.Port = closedPort(t) },
			fail: []string{doctor.CheckListener}, fixHas: "winrm quickconfig"},
		{name: "untrusted certificate", lab: func() lab.Config { return lab.Config{Platform: "iis"} },
			cfg:  func(t *testing.T, c *remediate.WinRMConfig) { c.CACertFile = writeFile(t, "other.pem", otherCA.CAPEM) },
			fail: []string{doctor.CheckCertificate, doctor.CheckLogin}, fixHas: "--winrm-ca"},
		{name: "certificate for another name", lab: func() lab.Config { return lab.Config{Platform: "iis"} },
			cfg:  func(t *testing.T, c *remediate.WinRMConfig) { c.TLSServerName = "mail.wrong.example" },
			fail: []string{doctor.CheckCertificate}, fixHas: "--winrm-server-name"},
		{name: "NTLM not offered", lab: func() lab.Config { return lab.Config{Platform: "iis", WinRM: lab.WSManConfig{DisableNTLM: true}} },
			fail: []string{doctor.CheckAuth, doctor.CheckLogin}, fixHas: `Negotiate="true"`},
		{name: "wrong password", lab: func() lab.Config { return lab.Config{Platform: "iis"} },
			cfg:  func(t *testing.T, c *remediate.WinRMConfig) { c.Password = "wrong" },
			fail: []string{doctor.CheckLogin}, fixHas: "password", pass: []string{doctor.CheckAuth}},
		{name: "Basic with a domain account", lab: func() lab.Config { return lab.Config{Platform: "exchange2016"} },
			cfg:  func(t *testing.T, c *remediate.WinRMConfig) { c.Auth = remediate.AuthBasic },
			fail: []string{doctor.CheckAuth, doctor.CheckLogin}, fixHas: "--winrm-auth ntlm"},
		{name: "Basic with a local account", lab: func() lab.Config { return lab.Config{Platform: "iis"} },
			cfg:  func(t *testing.T, c *remediate.WinRMConfig) { c.Auth = remediate.AuthBasic },
			pass: []string{doctor.CheckAuth, doctor.CheckLogin, doctor.CheckStdin}},
		{name: "stdin over MaxEnvelopeSizekb", lab: func() lab.Config {
			return lab.Config{Platform: "iis", WinRM: lab.WSManConfig{MaxEnvelopeSize: 64 << 10}}
		}, fail: []string{doctor.CheckStdin}, fixHas: "MaxEnvelopeSizekb", pass: []string{doctor.CheckLogin}},
		{name: "MaxEnvelopeSizekb below a Send", lab: func() lab.Config {
			return lab.Config{Platform: "iis", WinRM: lab.WSManConfig{MaxEnvelopeSize: 145 << 10}}
		}, fail: []string{doctor.CheckEnvelope}, fixHas: `MaxEnvelopeSizekb="500"`, pass: []string{doctor.CheckStdin}},
		// WinRM 2.0's default quota ends the Exchange shell: both checks
		// name the quota and its fix, and the second hop is not blamed.
		{name: "WinRM 2.0 memory quota on Exchange 2010", lab: func() lab.Config { return lab.Config{Platform: "exchange2010"} },
			fail: []string{doctor.CheckExchange, doctor.CheckMemoryQuota}, fixHas: `MaxMemoryPerShellMB="1024"`,
			pass: []string{doctor.CheckPowerShell, doctor.CheckStdin}, skip: []string{doctor.CheckSecondHop}},
		// The quota unreadable: doctor cannot say what it is, and the
		// Exchange shell check says the value is WinRM 2.0's default,
		// assumed, not read.
		{name: "WinRM 2.0 memory quota on Exchange 2010, unreadable", lab: func() lab.Config {
			return lab.Config{Platform: "exchange2010", WinRM: lab.WSManConfig{Conditions: lab.HostConditions{QuotasUnreadable: true}}}
		}, fail: []string{doctor.CheckExchange}, fixHas: `MaxMemoryPerShellMB="1024"`, skip: []string{doctor.CheckMemoryQuota, doctor.CheckSecondHop}},
		{name: "Exchange 2010 prepared as the README asks", lab: func() lab.Config { return lab.Config{Platform: "exchange2010", PrepareHost: true} },
			pass: []string{doctor.CheckMemoryQuota, doctor.CheckExchange, doctor.CheckSecondHop}},
		{name: "32-bit PowerShell on Exchange", lab: func() lab.Config {
			return lab.Config{Platform: "exchange2019", WinRM: lab.WSManConfig{Conditions: lab.HostConditions{Process32Bit: true}}}
		}, fail: []string{doctor.CheckPowerShell}, fixHas: "System32"},
		{name: "quotas unreadable", lab: func() lab.Config {
			return lab.Config{Platform: "iis", WinRM: lab.WSManConfig{Conditions: lab.HostConditions{QuotasUnreadable: true}}}
		}, pass: []string{doctor.CheckStdin, doctor.CheckWebWMI}, skip: []string{doctor.CheckMemoryQuota, doctor.CheckEnvelope}},
		{name: "no Web-WMI", lab: func() lab.Config {
			return lab.Config{Platform: "iis", WinRM: lab.WSManConfig{Conditions: lab.HostConditions{NoWebWMI: true}}}
		}, fail: []string{doctor.CheckWebWMI}, fixHas: "Web-WMI"},
		{name: "second hop on Exchange 2003", lab: func() lab.Config {
			return lab.Config{Host: lab.NewExchange2003(lab.Ex2003ADUnavailable), WinRM: lab.WSManConfig{Conditions: lab.HostConditions{NoSecondHop: true}}}
		}, fail: []string{doctor.CheckSecondHop}, fixHas: "second hop"},
		{name: "Exchange shell does not load", lab: func() lab.Config {
			h := lab.Exchange2016OpenCustomConnector()
			h.SetLoadError("Connecting to remote server failed: Access is denied.")
			return lab.Config{Host: h, WinRM: lab.WSManConfig{Conditions: lab.HostConditions{NoSecondHop: true}}}
		}, fail: []string{doctor.CheckExchange, doctor.CheckSecondHop}, fixHas: "Exchange Management Shell"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := startLab(t, tc.lab())
			cfg := labConfig(t, l)
			if tc.cfg != nil {
				tc.cfg(t, &cfg)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			rep, err := doctor.Run(ctx, doctor.Options{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			_ = rep.WriteText(&text)
			got := map[string]doctor.Check{}
			for _, c := range rep.Checks {
				if _, dup := got[c.ID]; dup {
					t.Errorf("check %s reported twice", c.ID)
				}
				got[c.ID] = c
				if c.Status == doctor.Fail && c.Fix == "" {
					t.Errorf("check %s failed without a fix", c.ID)
				}
			}
			if len(got) != 12 {
				t.Errorf("%d checks, want 12:\n%s", len(got), text.String())
			}
			// One true thing about the quota: a value doctor read is not
			// also called unreadable, and an unread one is not called read.
			quotaRead := got[doctor.CheckMemoryQuota].Status != doctor.Skip
			for _, c := range rep.Checks {
				if quotaRead && strings.Contains(c.Detail, "could not be read") {
					t.Errorf("doctor read MaxMemoryPerShellMB, yet %s says %q:\n%s", c.ID, c.Detail, text.String())
				}
				if !quotaRead && strings.Contains(c.Detail, "read from the WSMan: drive") {
					t.Errorf("MaxMemoryPerShellMB could not be read, yet %s says %q:\n%s", c.ID, c.Detail, text.String())
				}
			}
			// Every WS-Man logon is without delegation: the session never
			// reads the domain with its own token (tryout 12).
			if strings.Contains(text.String(), "it has network credentials") {
				t.Errorf("doctor says the WinRM session has network credentials:\n%s", text.String())
			}
			for _, id := range tc.fail {
				if got[id].Status != doctor.Fail {
					t.Errorf("%s = %s, want fail:\n%s", id, got[id].Status, text.String())
				}
			}
			if tc.name == "Basic with a domain account" && !strings.Contains(got[doctor.CheckLogin].Detail, "local accounts only") {
				t.Errorf("login detail %q does not say why a domain account fails over Basic", got[doctor.CheckLogin].Detail)
			}
			if len(tc.fail) > 0 && !strings.Contains(got[tc.fail[0]].Fix, tc.fixHas) {
				t.Errorf("%s fix %q, want it to mention %q", tc.fail[0], got[tc.fail[0]].Fix, tc.fixHas)
			}
			if len(tc.fail) == 0 && rep.Failed() != 0 {
				t.Errorf("a healthy host failed %d check(s):\n%s", rep.Failed(), text.String())
			}
			for _, id := range tc.pass {
				if got[id].Status != doctor.Pass {
					t.Errorf("%s = %s, want pass:\n%s", id, got[id].Status, text.String())
				}
			}
			for _, id := range tc.skip {
				if got[id].Status != doctor.Skip {
					t.Errorf("%s = %s, want skip:\n%s", id, got[id].Status, text.String())
				}
			}
			if strings.Contains(text.String(), cfg.Password) && cfg.Password != "" {
				t.Error("the report contains the password")
			}
		})
	}
}

func TestAuthSchemes(t *testing.T) {
	h := map[string][]string{"Www-Authenticate": {"Negotiate", "Kerberos", `Basic realm="WSMAN"`, "Negotiate, CredSSP"}}
	got := remediate.AuthSchemes(h)
	if strings.Join(got, ",") != "Negotiate,Kerberos,Basic,CredSSP" {
		t.Errorf("AuthSchemes = %q", got)
	}
}
