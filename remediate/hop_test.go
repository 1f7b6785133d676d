package remediate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/templates"
)

// hopPlatforms are the lab hosts that need the second hop, by name.
func hopPlatforms() map[string]func() lab.Host {
	return map[string]func() lab.Host{
		"exchange2003": func() lab.Host { return lab.NewExchange2003(lab.Ex2003Open) },
		"exchange2007": func() lab.Host { return lab.Exchange2007OpenDefault() },
		"exchange2010": func() lab.Host { return lab.Exchange2010OpenDefault() },
		"exchange2016": func() lab.Host { return lab.Exchange2016OpenCustomConnector() },
		"exchange2019": func() lab.Host { return lab.Exchange2019AnonDefaultFrontend() },
	}
}

func hostState(t *testing.T, h lab.Host) string {
	t.Helper()
	var v any
	switch x := h.(type) {
	case *lab.ExchangeHost:
		v = x.State()
	case *lab.Ex2003Host:
		v = []any{x.ADState(), x.MetabaseState()}
	default:
		t.Fatalf("no state for %T", h)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// What every relaylock script did before issue 14 (rely on the WinRS
// process's own token) fails on the strict lab as on Windows, with the
// double-hop error's HRESULT; with the credential passed as data the
// same scripts pass.
func TestSecondHopScriptsWithoutCredentialFail(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		platform, script string
		params           map[string]string
		wantType, wantHR string
	}{
		{"exchange2003", remediate.ScriptEx2003ReadAD, map[string]string{"relayiplistattr": remediate.Ex2003RelayIpListAttr, "dc": ""},
			"System.DirectoryServices.DirectoryServicesCOMException", "0x80072020"},
		{"exchange2007", remediate.ExchangeReadScript, nil, "Microsoft.Exchange.Data.Directory.ADOperationException", "0x80072020"},
		{"exchange2010", remediate.ExchangeReadScript, nil, "Microsoft.Exchange.Data.Directory.ADOperationException", "0x80072020"},
		{"exchange2016", remediate.ExchangeReadScript, nil, "Microsoft.Exchange.Data.Directory.ADOperationException", "0x80072020"},
		{"exchange2016", remediate.HopCheckScript, map[string]string{"target": "exchange"},
			"System.Management.Automation.Remoting.PSRemotingTransportException", "0x8009030E"},
		{"exchange2007", remediate.HopCheckScript, map[string]string{"target": "exchange2007"},
			"System.DirectoryServices.DirectoryServicesCOMException", "0x80072020"},
	}
	for _, tc := range tests {
		t.Run(tc.platform+"/"+tc.script, func(t *testing.T) {
			h := hopPlatforms()[tc.platform]()
			// The host prepared as the README asks (WinRM 2.0's quota
			// raised), so that the second hop is what fails.
			cond := lab.PreparedConditions(h)
			run, err := (&lab.DirectRunner{Host: h, NoHop: true, Conditions: cond}).Run(ctx, tc.script, tc.params)
			if err != nil {
				t.Fatal(err)
			}
			if run.Output.ExitCode == 0 {
				t.Fatalf("%s passed without a credential on the strict lab:\n%s", tc.script, run.Stdout)
			}
			var typ, hr string
			for _, r := range run.Output.Records {
				if r.Type == "error" || r.Type == "hoperror" {
					typ, hr = r.Str("type"), r.Str("hresult")
				}
			}
			if typ != tc.wantType || hr != tc.wantHR {
				t.Errorf("error type %q hresult %q, want %q %q", typ, hr, tc.wantType, tc.wantHR)
			}
			if run.Hop == "" || strings.Contains(run.Hop, "explicit credential of") {
				t.Errorf("run.Hop = %q, want the no-credential note", run.Hop)
			}
			// The same script with the credential as data passes.
			run, err = (&lab.DirectRunner{Host: h, Conditions: cond}).Run(ctx, tc.script, tc.params)
			if err != nil || run.Output.ExitCode != 0 {
				t.Fatalf("with the credential: %v\n%s", err, run.Stdout)
			}
			if !strings.Contains(run.Hop, lab.DefaultDirectory.User) {
				t.Errorf("run.Hop = %q", run.Hop)
			}
			for k, v := range run.Params {
				if remediate.IsSecretParam(k) || strings.Contains(v, lab.DefaultDirectory.Password) {
					t.Errorf("recorded parameter %s holds the secret", k)
				}
			}
		})
	}
}

// Before any read relaylock checks the second hop; when it fails it says
// "second hop", lists the fixes, and nothing is read or changed.
func TestSecondHopCheckedBeforeAnyRead(t *testing.T) {
	for name, mk := range hopPlatforms() {
		for _, variant := range []struct {
			name   string
			runner func(h lab.Host) *lab.DirectRunner
			want   string
		}{
			// Hosts prepared as the README asks (WinRM 2.0's quota raised).
			{"no credential", func(h lab.Host) *lab.DirectRunner {
				return &lab.DirectRunner{Host: h, NoHop: true, Conditions: lab.PreparedConditions(h)}
			}, "relaylock had none to pass"},
			{"wrong password", func(h lab.Host) *lab.DirectRunner {
				return &lab.DirectRunner{Host: h, Hop: remediate.HopCredential{User: lab.DefaultDirectory.User, Password: "wrong"}, Conditions: lab.PreparedConditions(h)}
			}, "refused"},
		} {
			t.Run(name+"/"+variant.name, func(t *testing.T) {
				h := mk()
				before := hostState(t, h)
				r := variant.runner(h)
				insp, err := remediate.InspectHost(context.Background(), r, "mail", nil)
				if !errors.Is(err, remediate.ErrSecondHop) {
					t.Fatalf("err = %v, want ErrSecondHop", err)
				}
				var he *remediate.SecondHopError
				if !errors.As(err, &he) {
					t.Fatalf("err %T is not a *SecondHopError", err)
				}
				msg := err.Error()
				for _, must := range []string{"second hop", variant.want, "nothing was read or changed", "--hop-user", "Organization Management"} {
					if !strings.Contains(msg, must) {
						t.Errorf("message lacks %q:\n%s", must, msg)
					}
				}
				if insp == nil || len(insp.Runs) != 2 || insp.Runs[1].Script != remediate.HopCheckScript || len(insp.Settings) != 0 {
					t.Fatalf("want an inspection with detect and hop-check only, got %+v", insp)
				}
				// Remediate stops at the same point: no backup, no change.
				bk := filepath.Join(t.TempDir(), "backup.json")
				_, err = remediate.Remediate(context.Background(), remediate.Options{Host: "mail", Runner: r, Yes: true, BackupPath: bk,
					Request: remediate.Request{Allow: []remediate.AddrRange{mustRange(t, "192.0.2.25")}}})
				if !errors.Is(err, remediate.ErrSecondHop) {
					t.Fatalf("remediate: %v", err)
				}
				if m, _ := filepath.Glob(bk + "*"); len(m) != 0 {
					t.Errorf("a backup was written: %v", m)
				}
				if hostState(t, h) != before {
					t.Error("the host changed")
				}
			})
		}
	}
}

func mustRange(t *testing.T, s string) remediate.AddrRange {
	t.Helper()
	r, err := remediate.ParseAddrRange(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// With the credential, remediate and rollback pass on every platform
// that needs the second hop, and every hop script carried it.
func TestSecondHopRemediateAndRollback(t *testing.T) {
	for name, mk := range hopPlatforms() {
		t.Run(name, func(t *testing.T) {
			h := mk()
			if x, ok := h.(*lab.Ex2003Host); ok {
				x.SetSyncDelay(10 * time.Millisecond)
			}
			before := hostState(t, h)
			r := &lab.DirectRunner{Host: h, Conditions: lab.PreparedConditions(h)} // prepared as the README asks
			bk := filepath.Join(t.TempDir(), "backup.json")
			out, err := remediate.Remediate(context.Background(), remediate.Options{Host: "mail", Runner: r, Yes: true, BackupPath: bk,
				Request: remediate.Request{Allow: []remediate.AddrRange{mustRange(t, "192.0.2.25")}, SyncTimeout: 5 * time.Second}})
			if err != nil {
				t.Fatalf("remediate: %v", err)
			}
			if hostState(t, h) == before {
				t.Fatal("remediate changed nothing")
			}
			for _, run := range append(out.Before.Runs, out.After.Runs...) {
				if remediate.ScriptNeedsHop(run.Script) && !strings.HasPrefix(run.Hop, "explicit credential of ") {
					t.Errorf("%s ran with Hop %q", run.Script, run.Hop)
				}
			}
			b, _, err := remediate.LoadBackup(bk)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := remediate.Rollback(context.Background(), remediate.RollbackOptions{Host: "mail", Runner: r, Backup: b}); err != nil {
				t.Fatalf("rollback: %v", err)
			}
			if hostState(t, h) != before {
				t.Error("rollback did not restore the host")
			}
		})
	}
}

// One domain controller per run: with a second DC that replicates a
// write only an hour later, an unpinned read-back would see the old state
// half of the time; remediate pins the DC of its first read, so every
// script of the run talks to one DC and the read-back matches.
func TestExchangeOneDomainControllerPerRun(t *testing.T) {
	ctx := context.Background()
	h := lab.Exchange2016OpenCustomConnector()
	h.AddDomainController("DC2.corp.example", time.Hour)
	r := &lab.DirectRunner{Host: h}
	// The lab's replication bites: a write through DC1 is not on DC2.
	d, err := remediate.DriverFor(remediate.PlatformExchange)
	if err != nil {
		t.Fatal(err)
	}
	bk := filepath.Join(t.TempDir(), "backup.json")
	out, err := remediate.Remediate(ctx, remediate.Options{Host: "ex1", Runner: r, Yes: true, BackupPath: bk,
		Request: remediate.Request{Allow: []remediate.AddrRange{mustRange(t, "192.0.2.25")}}})
	if err != nil {
		t.Fatalf("remediate: %v (DCs %v)", err, h.ScriptDCs())
	}
	dcs := h.ScriptDCs()
	if len(dcs) != 3 { // read, write, read-back
		t.Fatalf("exchange scripts answered by %v, want 3 runs", dcs)
	}
	for _, dc := range dcs {
		if dc != dcs[0] {
			t.Errorf("one run used DCs %v, want one", dcs)
		}
	}
	if out.NoChange {
		t.Fatal("nothing to change: the test proves nothing")
	}
	// An unpinned read now (the DCs answer in turn) shows the old state
	// on one of them: that is what pinning protects the read-back from.
	stale := false
	for j := 0; j < 2; j++ {
		insp, err := d.Inspect(ctx, r, "ex1", h.HostInfo(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(remediate.Compare(out.Plan.Changes, insp.Settings)) > 0 {
			stale = true
		}
	}
	if !stale {
		t.Error("no unpinned read showed the unreplicated state: the lab's second DC proves nothing")
	}
}

// Writes through the bare snap-in on 2010+ are refused without --force
// (Request.Force) before anything changes, and go through with it.
func TestExchangeBareSnapinRefusedWithoutForce(t *testing.T) {
	ctx := context.Background()
	h := lab.Exchange2016OpenCustomConnector()
	h.SetLoader("snapin")
	before := hostState(t, h)
	r := &lab.DirectRunner{Host: h}
	req := remediate.Request{Allow: []remediate.AddrRange{mustRange(t, "192.0.2.25")}}
	_, err := remediate.Remediate(ctx, remediate.Options{Host: "ex1", Runner: r, Yes: true, BackupPath: filepath.Join(t.TempDir(), "b.json"), Request: req})
	if !errors.Is(err, remediate.ErrUnsupportedShell) || !strings.Contains(err.Error(), "force the write") || !strings.Contains(err.Error(), "irreparable damage") {
		t.Fatalf("err = %v", err)
	}
	if hostState(t, h) != before || len(h.Writes()) != 0 {
		t.Fatal("the host changed")
	}
	req.Force = true
	if _, err := remediate.Remediate(ctx, remediate.Options{Host: "ex1", Runner: r, Yes: true, BackupPath: filepath.Join(t.TempDir(), "b.json"), Request: req}); err != nil {
		t.Fatalf("with --force: %v", err)
	}
	w := h.Writes()
	if len(w) == 0 || w[0]["allow_snapin"] != "yes" {
		t.Errorf("writes %v: want allow_snapin=yes", w)
	}
	// The script itself refuses too, whatever the driver decided.
	run, _ := r.Run(ctx, remediate.ExchangeWriteScript, remediate.EncodeExchangeOps([]remediate.ExchangeOp{{Kind: remediate.OpSetDomain, Identity: "corp.example", DomainType: "Authoritative"}}))
	if run == nil || run.Output == nil || run.Output.ExitCode != 2 {
		t.Errorf("exchange-write through the snap-in without allow_snapin: %+v", run)
	}
}

// WinRM 2.0's 150 MB shell quota is reported before the Exchange shell
// loads and, left at that default, ends the hop check: relaylock stops
// with ErrShellMemoryQuota and the README's fix, having read nothing.
// Raised as the README asks, the same host is inspected without the
// warning; later hosts (1024 MB) never get it.
func TestExchangeShellQuotaWarning(t *testing.T) {
	for _, tc := range []struct {
		host     func() lab.Host
		prepared bool
		warn     bool
	}{
		{func() lab.Host { return lab.Exchange2010OpenDefault() }, false, true},
		{func() lab.Host { return lab.Exchange2007OpenDefault() }, false, true},
		{func() lab.Host { return lab.Exchange2010OpenDefault() }, true, false},
		{func() lab.Host { return lab.Exchange2007OpenDefault() }, true, false},
		{func() lab.Host { return lab.Exchange2016OpenCustomConnector() }, false, false},
	} {
		h := tc.host()
		r := &lab.DirectRunner{Host: h}
		if tc.prepared {
			r.Conditions = lab.PreparedConditions(h)
		}
		name := fmt.Sprintf("%s prepared=%v", h.HostInfo().ExchangeVersion, tc.prepared)
		insp, err := remediate.InspectHost(context.Background(), r, "ex1", []netip.Addr{netip.MustParseAddr("203.0.113.9")})
		if insp == nil {
			t.Fatalf("%s: no inspection: %v", name, err)
		}
		if got := strings.Contains(strings.Join(insp.Warnings, "\n"), "MaxMemoryPerShellMB"); got != tc.warn {
			t.Errorf("%s: quota warning %v, want %v (%v)", name, got, tc.warn, insp.Warnings)
		}
		if !tc.warn {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if !errors.Is(err, remediate.ErrShellMemoryQuota) || !strings.Contains(err.Error(), remediate.ShellMemoryQuotaFixWinRM2) {
			t.Errorf("%s: %v, want ErrShellMemoryQuota with the README's fix", name, err)
		}
		if len(insp.Settings) != 0 || len(insp.Runs) != 2 {
			t.Errorf("%s: read past the failed hop check: %d runs, %d settings", name, len(insp.Runs), len(insp.Settings))
		}
	}
}

func TestHopCredentialDefaults(t *testing.T) {
	tests := []struct {
		cfg  remediate.WinRMConfig
		want string
	}{
		{remediate.WinRMConfig{Auth: remediate.AuthNTLM, User: `CORP\a`, Password: "p"}, `CORP\a`},
		{remediate.WinRMConfig{Auth: remediate.AuthBasic, User: "local", Password: "p"}, "local"},
		{remediate.WinRMConfig{Auth: remediate.AuthKerberos, User: "a@CORP.EXAMPLE", Password: "p"}, "a@CORP.EXAMPLE"},
		{remediate.WinRMConfig{Auth: remediate.AuthKerberos, User: "a@CORP.EXAMPLE", KrbCCache: "/tmp/cc"}, "none"},
		{remediate.WinRMConfig{Auth: remediate.AuthCertificate, ClientCertFile: "c.pem"}, "none"},
		{remediate.WinRMConfig{Auth: remediate.AuthCertificate, HopUser: `CORP\b`, HopPassword: "q"}, `CORP\b`},
		{remediate.WinRMConfig{Auth: remediate.AuthNTLM, User: "local", Password: "p", HopUser: `CORP\b`, HopPassword: "q"}, `CORP\b`},
	}
	for _, tc := range tests {
		h := tc.cfg.Hop()
		if h.String() != tc.want {
			t.Errorf("%+v: hop %s, want %s", tc.cfg.Auth, h, tc.want)
		}
		if strings.Contains(fmt.Sprintf("%v %+v %#v %s", h, h, h, h), "q") && h.Password == "q" {
			t.Errorf("the hop password is printed by a format verb")
		}
	}
	bad := remediate.WinRMConfig{Host: "h", Port: 5986, HopUser: `CORP\b`}
	if _, err := bad.Validate(); !errors.Is(err, remediate.ErrConfig) {
		t.Errorf("hop user without password: %v", err)
	}
	if p := remediate.RecordedParams(map[string]string{"a": "1", remediate.HopPasswordParam: "q"}); len(p) != 1 || p["a"] != "1" {
		t.Errorf("RecordedParams = %v", p)
	}
}

// The AD second-hop check binds to the domain controller the run names
// (--dc), as the read and the write will: LDAP://DC/... A serverless bind
// reaches the site's DC (on the Exchange 2003 lab not the one DS2MB
// reads); a named DC that does not exist fails with "The server is not
// operational." (0x8007203A), one that does not accept the hop
// credential with the logon error (0x8007052E), and a process without
// credentials with the double-hop error (0x80072020). Each failure stops
// relaylock after detect and hop-check, before any read.
func TestSecondHopBindsToNamedDC(t *testing.T) {
	foreign := lab.DefaultDirectory
	foreign.ForeignDCs = []string{lab.Ex2003ConfigDC}
	for _, tc := range []struct {
		name    string
		dc      string
		runner  func(h lab.Host) *lab.DirectRunner
		boundTo string // the DC that answered; "" = the check must fail
		hresult string
		down    bool // ErrDCUnreachable
		what    string
	}{
		{"serverless: the site's DC", "", func(h lab.Host) *lab.DirectRunner { return &lab.DirectRunner{Host: h} }, lab.Ex2003OtherDC, "", false, ""},
		{"named DC", lab.Ex2003ConfigDC, func(h lab.Host) *lab.DirectRunner { return &lab.DirectRunner{Host: h} }, lab.Ex2003ConfigDC, "", false, ""},
		{"named by its short name", "DC02", func(h lab.Host) *lab.DirectRunner { return &lab.DirectRunner{Host: h} }, lab.Ex2003OtherDC, "", false, ""},
		{"named DC that does not exist", "DC09.corp.example", func(h lab.Host) *lab.DirectRunner { return &lab.DirectRunner{Host: h} },
			"", remediate.HResultServerDown, true, "on domain controller DC09.corp.example"},
		{"named DC that refuses the hop credential", lab.Ex2003ConfigDC, func(h lab.Host) *lab.DirectRunner {
			return &lab.DirectRunner{Host: h, Directory: foreign}
		}, "", remediate.HResultLogonFailure, false, "on domain controller " + lab.Ex2003ConfigDC},
		{"named DC, no credential to pass", lab.Ex2003ConfigDC, func(h lab.Host) *lab.DirectRunner { return &lab.DirectRunner{Host: h, NoHop: true} },
			"", "0x80072020", false, "on domain controller " + lab.Ex2003ConfigDC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := lab.NewExchange2003(lab.Ex2003Open)
			before := hostState(t, h)
			insp, err := remediate.InspectHostWith(context.Background(), tc.runner(h), "mail", nil, remediate.HostOptions{DC: tc.dc})
			if insp == nil || len(insp.Runs) < 2 || insp.Runs[1].Script != remediate.HopCheckScript {
				t.Fatalf("no hop-check run: %+v, %v", insp, err)
			}
			hop := insp.Runs[1]
			if got := hop.Params[remediate.DomainControllerParam]; got != tc.dc {
				t.Errorf("hop-check params %v, want dc %q", hop.Params, tc.dc)
			}
			if tc.boundTo != "" {
				if err != nil {
					t.Fatalf("inspect: %v", err)
				}
				if rec, _ := hop.Output.First("hop"); rec.Str("dc") != tc.boundTo {
					t.Errorf("the check bound to %q, want %q", rec.Str("dc"), tc.boundTo)
				}
				return
			}
			var he *remediate.SecondHopError
			if !errors.Is(err, remediate.ErrSecondHop) || !errors.As(err, &he) {
				t.Fatalf("err = %v, want a SecondHopError", err)
			}
			if he.HResult != tc.hresult || he.DC != tc.dc || !strings.Contains(he.What, tc.what) {
				t.Errorf("SecondHopError %+v, want HRESULT %s, DC %s, what ~%q", he, tc.hresult, tc.dc, tc.what)
			}
			if got := errors.Is(err, remediate.ErrDCUnreachable); got != tc.down {
				t.Errorf("ErrDCUnreachable %v, want %v: %v", got, tc.down, err)
			}
			if len(insp.Runs) != 2 || len(insp.Settings) != 0 {
				t.Errorf("read past the failed check: %d runs", len(insp.Runs))
			}
			if hostState(t, h) != before {
				t.Error("the host changed")
			}
		})
	}
	// Every LDAP path of the check goes through the DC prefix: no
	// serverless literal is left to bind past --dc.
	src, err := templates.Script(remediate.HopCheckScript)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(src, "'LDAP://RootDSE'") || strings.Contains(src, "('LDAP://' + $cfg)") {
		t.Error("hop-check.ps1 still binds serverless whatever dc says")
	}
}
