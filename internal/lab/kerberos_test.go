package lab

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/relaylock/relaylock/internal/krbtest"
	"github.com/relaylock/relaylock/internal/needs"
	"github.com/relaylock/relaylock/remediate"
)

const krbTestPassword = "Krb-Lab-Secret-4c1d"

// requireKDC skips (fails in CI) when MIT Kerberos is missing.
func requireKDC(t *testing.T) {
	t.Helper()
	if err := krbtest.Available(); err != nil {
		needs.Missing(t, "MIT Kerberos KDC", err.Error())
	}
}

// krbLab is a lab whose WinRM face accepts Kerberos for HTTP/<host>
// from a real MIT KDC, whose realm holds the lab account
// (CORP\Administrator = Administrator@CORP.EXAMPLE).
type krbLab struct {
	*Lab
	kdc *krbtest.KDC
	ca  string
}

func startKerberosLab(t *testing.T, cfg Config) *krbLab {
	t.Helper()
	return startKerberosLabWith(t, newLabKDC(t), cfg)
}

// newLabKDC starts a KDC for the lab's realm holding the lab account.
func newLabKDC(t *testing.T) *krbtest.KDC {
	t.Helper()
	requireKDC(t)
	kdc := krbtest.Serve(t, krbtest.Config{Domains: []string{LabExchangeDomain}})
	if err := kdc.AddUser(context.Background(), "Administrator", krbTestPassword); err != nil {
		t.Fatal(err)
	}
	return kdc
}

// startKerberosLabWith starts a Kerberos lab on kdc (several labs may
// share one KDC).
func startKerberosLabWith(t *testing.T, kdc *krbtest.KDC, cfg Config) *krbLab {
	t.Helper()
	// The host is prepared as the README asks (WinRM 2.0's 150 MB
	// quota raised), so the Exchange 2007/2010 shell loads.
	cfg.PrepareHost = true
	cfg.Password = krbTestPassword
	if cfg.Kerberos == nil {
		cfg.Kerberos = &KerberosConfig{}
	}
	cfg.Kerberos.Realm = kdc.Realm
	if cfg.Kerberos.KeytabFor == nil && cfg.Kerberos.Keytab == nil {
		cfg.Kerberos.KeytabFor = func(spn string) ([]byte, error) { return kdc.ServiceKeytab(context.Background(), spn) }
	}
	if cfg.WinRM.MaxOperationTimeout == 0 {
		cfg.WinRM.MaxOperationTimeout = 5 * time.Second
	}
	l := startLab(t, cfg)
	kl := &krbLab{Lab: l, kdc: kdc}
	if l.HTTPS {
		kl.ca = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(kl.ca, l.CACertPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return kl
}

// runnerConfig is relaylock's WinRM configuration for Kerberos with the
// lab account's password (masterzen/winrm's Kerberos transport).
func (kl *krbLab) runnerConfig() remediate.WinRMConfig {
	return remediate.WinRMConfig{Host: kl.WinRMHost, Port: kl.WinRMPort, HTTPS: kl.HTTPS, CACertFile: kl.ca,
		TLSServerName: kl.TLSServerName, Auth: remediate.AuthKerberos, User: "Administrator@" + kl.kdc.Realm,
		Password: krbTestPassword, KrbConfig: kl.kdc.Krb5Conf, SPN: kl.KerberosSPN, OperationTimeout: 5 * time.Second}
}

func runKrbScript(t *testing.T, cfg remediate.WinRMConfig, script string, params map[string]string) (*remediate.ScriptRun, error) {
	t.Helper()
	r, _, err := remediate.NewWinRMRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return r.Run(ctx, script, params)
}

// TestKerberosAcceptorEveryPlatform: relaylock's Kerberos client
// (masterzen/winrm with gokrb5, against the real MIT KDC) detects every
// lab platform over HTTPS. Its AP-REQ comes in SPNEGO and asks for no
// delegation, so the logon holds no network credentials: on an Exchange
// host the second-hop check fails without an explicit credential, with
// the error Windows gives, and passes with one.
func TestKerberosAcceptorEveryPlatform(t *testing.T) {
	for _, platform := range Platforms() {
		t.Run(platform, func(t *testing.T) {
			kl := startKerberosLab(t, Config{Platform: platform})
			if kl.User != LabNetBIOSDomain+`\Administrator` {
				t.Fatalf("lab account %q, want the domain account (Kerberos logs on domain accounts only)", kl.User)
			}
			cfg := kl.runnerConfig()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r, _, err := remediate.NewWinRMRunner(cfg)
			if err != nil {
				t.Fatal(err)
			}
			info, _, err := remediate.Detect(ctx, r)
			if err != nil || info.ComputerName != kl.Host.HostInfo().ComputerName {
				t.Fatalf("detect over Kerberos: %+v, %v", info, err)
			}
			logons := kl.WinRM.KerberosLogons()
			if len(logons) == 0 {
				t.Fatal("no Kerberos logon recorded")
			}
			for _, lo := range logons {
				if lo.Delegated || lo.GSSFlags&gssapi.ContextFlagDeleg != 0 {
					t.Errorf("masterzen/winrm asked for delegation: %+v", lo)
				}
				if !lo.SPNEGO || !strings.EqualFold(lo.Client, "Administrator@"+kl.kdc.Realm) ||
					!strings.EqualFold(lo.SPN, kl.KerberosSPN+"@"+kl.kdc.Realm) {
					t.Errorf("logon %+v", lo)
				}
			}
			for _, c := range kl.WinRM.Calls() {
				if c.Status == http.StatusUnauthorized {
					t.Errorf("a request was refused: %+v", c)
				}
			}

			target := map[remediate.Platform]string{remediate.PlatformExchange2003: "ad", remediate.PlatformExchange: "exchange"}[info.Platform]
			if target == "" {
				return // IIS SMTP never crosses the second hop
			}
			if info.ExchangeVersion == "2007" {
				target = "exchange2007"
			}
			// No explicit credential: the runner sends none when it has
			// no password to pass (a credential cache, say).
			noHop := cfg
			noHop.HopUser, noHop.HopPassword = "", ""
			run, err := runKrbScript(t, withoutHop(t, kl, noHop), remediate.HopCheckScript, map[string]string{"target": target})
			if err == nil && run != nil && run.ExitCode == 0 {
				t.Fatalf("hop-check without an explicit credential passed over Kerberos: %+v", run)
			}
			last := kl.WinRM.Runs()[len(kl.WinRM.Runs())-1]
			if last.ExplicitHop || !strings.Contains(string(last.Stdout), "hoperror") {
				t.Fatalf("no second-hop error: explicit=%v stdout %q", last.ExplicitHop, last.Stdout)
			}
			wantHR := map[string]string{"ad": hrOperationsError, "exchange2007": hrOperationsError, "exchange": hrNoLogonSession}[target]
			if !strings.Contains(string(last.Stdout), "hresult="+base64.StdEncoding.EncodeToString([]byte(wantHR))) {
				t.Errorf("second-hop error without %s: %q", wantHR, last.Stdout)
			}
			// With the password passed explicitly (the runner's default).
			run, err = runKrbScript(t, cfg, remediate.HopCheckScript, map[string]string{"target": target})
			if err != nil || run.ExitCode != 0 {
				t.Fatalf("hop-check with the explicit credential: %+v, %v", run, err)
			}
			if last := kl.WinRM.Runs()[len(kl.WinRM.Runs())-1]; !last.ExplicitHop {
				t.Error("the explicit credential was not used")
			}
		})
	}
}

// withoutHop makes cfg carry no second-hop credential: the Kerberos
// logon uses a credential cache (MIT kinit) instead of the password.
func withoutHop(t *testing.T, kl *krbLab, cfg remediate.WinRMConfig) remediate.WinRMConfig {
	t.Helper()
	cfg.KrbCCache = filepath.Join(t.TempDir(), "ccache")
	if err := kl.kdc.Kinit(context.Background(), cfg.User, cfg.Password, cfg.KrbCCache); err != nil {
		t.Fatal(err)
	}
	cfg.Password = ""
	return cfg
}

// decryptAPRep opens an AP-REP's encrypted part with the session key.
func decryptAPRep(rep messages.APRep, key types.EncryptionKey) ([]byte, error) {
	return crypto.DecryptEncPart(rep.EncPart, key, keyusage.AP_REP_ENCPART)
}

// Windows is strict where the lab must be: a bad token, a ticket for
// another SPN, a keytab that does not hold the ticket's key (re-keyed
// service), an expired ticket, a replayed authenticator, a ticket of
// another user, and a host with a local account get 401 with the
// schemes offered; Kerberos over plain HTTP is refused unless the host
// allows unencrypted traffic, because the client does not encrypt.
func TestKerberosAcceptorRefuses(t *testing.T) {
	kl := startKerberosLab(t, Config{Platform: "exchange2016", Kerberos: &KerberosConfig{MaxClockSkew: 2 * time.Second}})
	short := startKerberosLabWith(t, kl.kdc, Config{Platform: "iis", Kerberos: &KerberosConfig{MaxClockSkew: time.Second}})
	ctx := context.Background()
	kc, err := config.Load(kl.kdc.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	login := func(user, pw string) *client.Client {
		cl := client.NewWithPassword(user, kl.kdc.Realm, pw, kc, client.DisablePAFXFAST(true))
		if err := cl.Login(); err != nil {
			t.Fatal(err)
		}
		return cl
	}
	admin := login("Administrator", krbTestPassword)
	// token builds a SPNEGO token for spn from cl, as masterzen does.
	token := func(cl *client.Client, spn string) string {
		tkt, key, err := cl.GetServiceTicket(spn)
		if err != nil {
			t.Fatal(err)
		}
		nt, err := spnego.NewNegTokenInitKRB5(cl, tkt, key)
		if err != nil {
			t.Fatal(err)
		}
		st := spnego.SPNEGOToken{Init: true, NegTokenInit: nt}
		b, err := st.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	post := func(url, scheme, tok string) (int, http.Header) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(""))
		req.Header.Set("Authorization", scheme+" "+tok)
		req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
		l := kl
		if strings.HasPrefix(url, short.WinRMURL) {
			l = short
		}
		resp, err := httpClientFor(t, l).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	good := token(admin, kl.KerberosSPN)
	if code, h := post(kl.WinRMURL, "Negotiate", good); code != http.StatusOK {
		t.Fatalf("a good ticket: %d", code)
	} else if rep := h.Get("WWW-Authenticate"); rep != "" {
		t.Errorf("AP-REP without mutual authentication requested: %q", rep)
	}

	if err := kl.kdc.AddUser(ctx, "mallory", "Mallory-Pw-1"); err != nil {
		t.Fatal(err)
	}
	if err := kl.kdc.AddService(ctx, "HTTP/other.corp.example"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, fault string
		tok         func() string
	}{
		{"not base64 Kerberos", faultKrbToken, func() string { return base64.StdEncoding.EncodeToString([]byte{0x60, 0x03, 0x06, 0x01, 0x00}) }},
		{"replayed authenticator", faultKrbReplay, func() string { return good }},
		{"ticket for another SPN", faultKrbSPN, func() string { return token(admin, "HTTP/other.corp.example") }},
		{"another user", faultKrbUser, func() string { return token(login("mallory", "Mallory-Pw-1"), kl.KerberosSPN) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(kl.WinRM.Calls())
			code, h := post(kl.WinRMURL, "Negotiate", tc.tok())
			if code != http.StatusUnauthorized || !strings.Contains(strings.Join(h.Values("WWW-Authenticate"), ","), "Kerberos") {
				t.Fatalf("status %d, offers %q", code, h.Values("WWW-Authenticate"))
			}
			calls := kl.WinRM.Calls()[before:]
			if len(calls) != 1 || calls[0].Fault != tc.fault {
				t.Errorf("calls %+v, want fault %s", calls, tc.fault)
			}
		})
	}

	// Expired: a ticket whose end time is past the skew, in a fresh
	// authenticator.
	shortCfg := *kc
	shortCfg.LibDefaults.TicketLifetime = 2 * time.Second
	cl := client.NewWithPassword("Administrator", kl.kdc.Realm, krbTestPassword, &shortCfg, client.DisablePAFXFAST(true))
	tkt, key, err := cl.GetServiceTicket(short.KerberosSPN)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(expiryOf(t, short, tkt)) + 1500*time.Millisecond)
	nt, err := spnego.NewNegTokenInitKRB5(cl, tkt, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := (&spnego.SPNEGOToken{Init: true, NegTokenInit: nt}).Marshal()
	before := len(short.WinRM.Calls())
	if code, _ := post(short.WinRMURL, "Negotiate", base64.StdEncoding.EncodeToString(b)); code != http.StatusUnauthorized {
		t.Fatalf("expired ticket: %d", code)
	}
	if c := short.WinRM.Calls()[before:]; len(c) != 1 || c[0].Fault != faultKrbExpire {
		t.Errorf("expired ticket: calls %+v", c)
	}

	// A keytab from before the service was re-keyed.
	if err := kl.kdc.Rekey(ctx, kl.KerberosSPN); err != nil {
		t.Fatal(err)
	}
	fresh := login("Administrator", krbTestPassword)
	before = len(kl.WinRM.Calls())
	if code, _ := post(kl.WinRMURL, "Negotiate", token(fresh, kl.KerberosSPN)); code != http.StatusUnauthorized {
		t.Fatalf("stale keytab: %d", code)
	}
	if c := kl.WinRM.Calls()[before:]; len(c) != 1 || c[0].Fault != faultKrbTicket {
		t.Errorf("stale keytab: calls %+v", c)
	}
}

// expiryOf decrypts tkt with the lab's keytab to read its end time.
func expiryOf(t *testing.T, l *krbLab, tkt messages.Ticket) time.Time {
	t.Helper()
	if err := tkt.DecryptEncPart(l.WinRM.krb.kt, nil); err != nil {
		t.Fatal(err)
	}
	return tkt.DecryptedEncPart.EndTime
}

// httpClientFor trusts the lab's CA (the HTTPS listener).
func httpClientFor(t *testing.T, kl *krbLab) *http.Client {
	t.Helper()
	if !kl.HTTPS {
		return &http.Client{}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tc, err := remediate.WinRMConfig{CACertFile: kl.ca, TLSServerName: kl.TLSServerName}.TLSClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	tr.TLSClientConfig = tc
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// Over plain HTTP the client's Kerberos does not encrypt: the default
// listener (AllowUnencrypted=false) refuses it with 401, one that allows
// unencrypted traffic runs it; relaylock itself refuses to send Kerberos
// in clear text unless told to.
func TestKerberosPlainHTTP(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		allow bool
		ok    bool
	}{
		{"AllowUnencrypted=false (the default listener)", Config{Platform: "iis", SealedHTTP: true}, true, false},
		{"AllowUnencrypted=true", Config{Platform: "iis", PlainHTTP: true}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kl := startKerberosLab(t, tc.cfg)
			cfg := kl.runnerConfig()
			cfg.AllowUnencrypted = tc.allow
			run, err := runKrbScript(t, cfg, remediate.DetectScript, nil)
			if tc.ok {
				if err != nil || run.ExitCode != 0 {
					t.Fatalf("detect: %+v, %v", run, err)
				}
				if len(kl.WinRM.KerberosLogons()) == 0 {
					t.Error("no Kerberos logon")
				}
				return
			}
			if !errors.Is(err, remediate.ErrAuth) {
				t.Fatalf("unencrypted Kerberos on a listener that requires encryption: %v, want ErrAuth", err)
			}
			refused := false
			for _, c := range kl.WinRM.Calls() {
				refused = refused || c.Fault == "unencrypted"
			}
			if !refused {
				t.Errorf("no request refused as unencrypted: %+v", kl.WinRM.Calls())
			}
			cfg.AllowUnencrypted = false
			if _, _, err := remediate.NewWinRMRunner(cfg); !errors.Is(err, remediate.ErrConfig) {
				t.Errorf("relaylock accepted Kerberos over plain HTTP without --winrm-allow-unencrypted: %v", err)
			}
		})
	}
}

// A host whose account is local accepts no Kerberos logon (Kerberos
// knows domain accounts only), even with a valid ticket for its SPN.
func TestKerberosLocalAccountRefused(t *testing.T) {
	kl := startKerberosLab(t, Config{Platform: "iis", User: "Administrator"})
	_, err := runKrbScript(t, kl.runnerConfig(), remediate.DetectScript, nil)
	if !errors.Is(err, remediate.ErrAuth) {
		t.Fatalf("Kerberos to a host with a local account: %v, want ErrAuth", err)
	}
	for _, c := range kl.WinRM.Calls() {
		if c.Status == http.StatusUnauthorized && c.Fault == faultKrbUser {
			return
		}
	}
	t.Errorf("no %s refusal: %+v", faultKrbUser, kl.WinRM.Calls())
}

// A client that asks for mutual authentication gets an AP-REP it can
// decrypt with the session key, echoing its authenticator's time; a
// delegated TGT in the authenticator is recognised.
func TestKerberosMutualAndDelegationFlags(t *testing.T) {
	kl := startKerberosLab(t, Config{Platform: "exchange2003"})
	kc, _ := config.Load(kl.kdc.Krb5Conf)
	cl := client.NewWithPassword("Administrator", kl.kdc.Realm, krbTestPassword, kc, client.DisablePAFXFAST(true))
	tkt, key, err := cl.GetServiceTicket(kl.KerberosSPN)
	if err != nil {
		t.Fatal(err)
	}
	mt, err := spnego.NewKRB5TokenAPREQ(cl, tkt, key, []int{gssapi.ContextFlagMutual, gssapi.ContextFlagInteg}, []int{2})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := mt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, kl.WinRMURL, strings.NewReader(""))
	req.Header.Set("Authorization", "Kerberos "+base64.StdEncoding.EncodeToString(raw))
	resp, err := httpClientFor(t, kl).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h := strings.TrimPrefix(resp.Header.Get("WWW-Authenticate"), "Kerberos ")
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("no AP-REP: %q", resp.Header.Get("WWW-Authenticate"))
	}
	var rt spnego.KRB5Token
	if err := rt.Unmarshal(b); err != nil || !rt.IsAPRep() {
		t.Fatalf("not a Kerberos AP-REP token: %v", err)
	}
	var part messages.EncAPRepPart
	plain, err := decryptAPRep(rt.APRep, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := part.Unmarshal(plain); err != nil {
		t.Fatal(err)
	}
	lo := kl.WinRM.KerberosLogons()
	if len(lo) != 1 || !lo[0].Mutual || lo[0].SPNEGO || lo[0].Delegated {
		t.Fatalf("logons %+v", lo)
	}
	if part.CTime.IsZero() {
		t.Error("AP-REP without the authenticator's time")
	}

	// The delegation flag without a KRB-CRED is not a delegated TGT;
	// the flag with a KRB-CRED is.
	ck := types.Checksum{CksumType: 0x8003, Checksum: make([]byte, 24)}
	ck.Checksum[20] = gssapi.ContextFlagDeleg
	if f, d := gssChecksumFlags(ck); d || f != gssapi.ContextFlagDeleg {
		t.Errorf("flag only: %d %v", f, d)
	}
}

// Two authenticators with the same client, time and microsecond but
// different contents (masterzen/winrm's concurrent Send and Receive can
// make them) are not a replay; the same authenticator twice is.
func TestKerberosReplayCacheKeysOnTheAuthenticator(t *testing.T) {
	kl := startKerberosLab(t, Config{Platform: "iis"})
	kc, _ := config.Load(kl.kdc.Krb5Conf)
	cl := client.NewWithPassword("Administrator", kl.kdc.Realm, krbTestPassword, kc, client.DisablePAFXFAST(true))
	tkt, key, err := cl.GetServiceTicket(kl.KerberosSPN)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	token := func(seq int64) string {
		auth, err := types.NewAuthenticator(kl.kdc.Realm, cl.Credentials.CName())
		if err != nil {
			t.Fatal(err)
		}
		auth.CTime, auth.Cusec, auth.SeqNumber = now.Truncate(time.Second), now.Nanosecond()/1000, seq
		req, err := messages.NewAPReq(tkt, key, auth)
		if err != nil {
			t.Fatal(err)
		}
		b, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		oid, _ := asn1.Marshal(gssapi.OIDKRB5.OID())
		return base64.StdEncoding.EncodeToString(asn1tools.AddASNAppTag(append(append(oid, 0x01, 0x00), b...), 0))
	}
	first, second := token(1), token(2)
	for i, tc := range []struct {
		tok  string
		want int
	}{{first, http.StatusOK}, {second, http.StatusOK}, {first, http.StatusUnauthorized}} {
		req, _ := http.NewRequest(http.MethodPost, kl.WinRMURL, strings.NewReader(""))
		req.Header.Set("Authorization", "Kerberos "+tc.tok)
		resp, err := httpClientFor(t, kl).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("request %d: %d, want %d", i, resp.StatusCode, tc.want)
		}
	}
}
