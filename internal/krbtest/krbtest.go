// Package krbtest runs a real MIT Kerberos KDC (Debian's krb5-kdc) for
// tests and the lab: a throwaway realm in a temp directory, with its own
// krb5.conf and kdc.conf, listening on 127.0.0.1 only (UDP and TCP, one
// free port). The client configuration it writes names that address and
// nothing else, with DNS lookups of KDCs and realms and reverse lookups
// of host names switched off (dns_lookup_kdc, dns_lookup_realm, rdns,
// dns_canonicalize_hostname), so no client that uses it reaches another
// address.
//
// Principals are added and keytabs exported with kadmin.local, which
// edits the KDC's database directly; passwords reach it on stdin, never on
// a command line. Start returns ErrUnavailable when the MIT binaries are
// missing, so a test can skip locally and fail in CI (internal/needs).
//
// The package does not import package testing: Serve takes the small TB
// interface, as audit/smtptest does.
package krbtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultRealm is the realm Start creates when Config.Realm is empty: the
// lab's Active Directory domain (corp.example) in upper case, as Windows
// names a domain's realm.
const DefaultRealm = "CORP.EXAMPLE"

// ErrUnavailable means the KDC cannot run here: a binary of Debian's
// krb5-kdc, krb5-admin-server or krb5-user is missing.
var ErrUnavailable = errors.New("MIT Kerberos KDC not available")

// EnvSbin names the directory holding krb5kdc, kdb5_util and kadmin.local
// (.ci/setup.d/70-kerberos.sh exports it); default /usr/sbin, then PATH.
const EnvSbin = "RELAYLOCK_KRB5_SBIN"

// Install says how to get the binaries, for skip and failure messages.
const Install = "apt-get install krb5-kdc krb5-admin-server krb5-user (.ci/setup.d/70-kerberos.sh)"

// Binaries are the programs the KDC needs, by name.
var Binaries = []string{"krb5kdc", "kdb5_util", "kadmin.local"}

// Config configures a KDC.
type Config struct {
	// Realm is the realm's name (default DefaultRealm).
	Realm string
	// Domains are DNS domains mapped to the realm in krb5.conf's
	// [domain_realm] (each domain and its subdomains), so that a
	// GSSAPI client turns HTTP@host into HTTP/host@REALM.
	Domains []string
	// MaxLife caps every ticket the KDC issues (default 10h); a test of
	// expired tickets lowers it.
	MaxLife time.Duration
	// Logf, when set, receives the KDC's log when it stops.
	Logf func(format string, args ...any)
}

// KDC is a running MIT KDC.
type KDC struct {
	Realm string
	// Addr is "127.0.0.1:PORT", served over UDP and TCP.
	Addr string
	// Dir is the KDC's temp directory (database, stash, logs, config).
	Dir string
	// Krb5Conf is the client configuration file (KRB5_CONFIG) naming this
	// KDC only.
	Krb5Conf string

	kdcConf string
	sbin    map[string]string
	cmd     *exec.Cmd
	done    chan struct{}
	logf    func(format string, args ...any)

	mu        sync.Mutex // serializes kadmin.local runs
	closeOnce sync.Once
	closeErr  error
}

// Available reports ErrUnavailable (wrapped, naming what is missing) when
// the KDC binaries cannot be found.
func Available() error {
	_, err := lookBinaries()
	return err
}

func lookBinaries() (map[string]string, error) {
	dirs := []string{os.Getenv(EnvSbin), "/usr/sbin", "/sbin", "/usr/local/sbin"}
	out := map[string]string{}
	var missing []string
	for _, b := range Binaries {
		found := ""
		for _, d := range dirs {
			if d == "" {
				continue
			}
			p := filepath.Join(d, b)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				found = p
				break
			}
		}
		if found == "" {
			if p, err := exec.LookPath(b); err == nil {
				found = p
			}
		}
		if found == "" {
			missing = append(missing, b)
			continue
		}
		out[b] = found
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s not found: %s", ErrUnavailable, strings.Join(missing, ", "), Install)
	}
	return out, nil
}

// TB is the part of testing.TB that Serve uses.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// Serve starts a KDC for cfg and stops it when the test ends; it fails
// the test when the KDC cannot start (check Available first to skip).
func Serve(t TB, cfg Config) *KDC {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	k, err := Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = k.Close()
	})
	return k
}

// Start creates the realm's database in a new temp directory and starts
// krb5kdc on a free loopback port. The KDC stops when ctx ends or Close
// is called; Close removes the directory.
func Start(ctx context.Context, cfg Config) (*KDC, error) {
	sbin, err := lookBinaries()
	if err != nil {
		return nil, err
	}
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	if cfg.MaxLife <= 0 {
		cfg.MaxLife = 10 * time.Hour
	}
	dir, err := os.MkdirTemp("", "krbtest-")
	if err != nil {
		return nil, fmt.Errorf("krbtest: %w", err)
	}
	k := &KDC{Realm: cfg.Realm, Dir: dir, sbin: sbin, logf: cfg.Logf,
		Krb5Conf: filepath.Join(dir, "krb5.conf"), kdcConf: filepath.Join(dir, "kdc.conf")}
	ok := false
	defer func() {
		if !ok {
			_ = k.Close()
		}
	}()
	// The port is chosen before krb5kdc binds it; another process may
	// take it in between, so a failed start is retried on a new port.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("krbtest: %w", err)
		}
		k.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := k.writeConfig(cfg); err != nil {
			return nil, err
		}
		if attempt == 0 {
			if err := k.createDB(ctx); err != nil {
				return nil, err
			}
		}
		if lastErr = k.startKDC(ctx); lastErr == nil {
			ok = true
			return k, nil
		}
	}
	return nil, lastErr
}

// freePort returns a port free on 127.0.0.1 for both TCP and UDP.
func freePort() (int, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return port, nil
	}
	return 0, errors.New("no port free for both TCP and UDP on 127.0.0.1")
}

// writeConfig writes kdc.conf (the KDC: database, listeners, log) and
// krb5.conf (clients: this KDC only, no DNS).
func (k *KDC) writeConfig(cfg Config) error {
	life := strconv.Itoa(int(cfg.MaxLife/time.Second)) + "s"
	kdc := fmt.Sprintf(`[kdcdefaults]
 kdc_listen = %[2]s
 kdc_tcp_listen = %[2]s
[realms]
 %[1]s = {
  database_name = %[3]s/principal
  key_stash_file = %[3]s/stash
  acl_file = %[3]s/kadm5.acl
  kdc_listen = %[2]s
  kdc_tcp_listen = %[2]s
  max_life = %[4]s
  max_renewable_life = 0s
 }
[logging]
 kdc = FILE:%[3]s/kdc.log
 admin_server = FILE:%[3]s/kadmin.log
 default = FILE:%[3]s/krb5lib.log
`, k.Realm, k.Addr, k.Dir, life)
	var dr strings.Builder
	for _, d := range cfg.Domains {
		d = strings.ToLower(strings.Trim(d, "."))
		if d != "" {
			fmt.Fprintf(&dr, " .%s = %s\n %s = %s\n", d, k.Realm, d, k.Realm)
		}
	}
	client := fmt.Sprintf(`[libdefaults]
 default_realm = %[1]s
 dns_lookup_kdc = false
 dns_lookup_realm = false
 dns_uri_lookup = false
 dns_canonicalize_hostname = false
 rdns = false
 noaddresses = true
 forwardable = false
 ticket_lifetime = %[4]s
 default_ccache_name = FILE:%[3]s/ccache
[realms]
 %[1]s = {
  kdc = %[2]s
  admin_server = %[2]s
 }
[domain_realm]
%[5]s`, k.Realm, k.Addr, k.Dir, life, dr.String())
	if err := os.WriteFile(k.kdcConf, []byte(kdc), 0o600); err != nil {
		return fmt.Errorf("krbtest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(k.Dir, "kadm5.acl"), nil, 0o600); err != nil {
		return fmt.Errorf("krbtest: %w", err)
	}
	if err := os.WriteFile(k.Krb5Conf, []byte(client), 0o600); err != nil {
		return fmt.Errorf("krbtest: %w", err)
	}
	return nil
}

// Env is the environment for a Kerberos client or admin tool using this
// KDC only (KRB5_CONFIG, KRB5_KDC_PROFILE, a credential cache in Dir).
func (k *KDC) Env() []string {
	return []string{
		"KRB5_CONFIG=" + k.Krb5Conf,
		"KRB5_KDC_PROFILE=" + k.kdcConf,
		"KRB5CCNAME=FILE:" + filepath.Join(k.Dir, "ccache"),
		"KRB5RCACHEDIR=" + k.Dir,
		"KRB5_TRACE=" + filepath.Join(k.Dir, "trace.log"),
	}
}

// command runs a KDC binary in Dir with the KDC's environment only
// (PATH and LANG kept), stdin as given.
func (k *KDC) command(ctx context.Context, bin string, stdin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, k.sbin[bin], args...)
	cmd.Dir = k.Dir
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}, k.Env()...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("krbtest: %s: %w: %s", bin, err, strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}

// createDB creates the realm's database with a random master key, given
// on stdin and kept in the stash file.
func (k *KDC) createDB(ctx context.Context) error {
	master, err := randomSecret()
	if err != nil {
		return err
	}
	_, err = k.command(ctx, "kdb5_util", master+"\n"+master+"\n", "create", "-s", "-r", k.Realm)
	return err
}

func (k *KDC) startKDC(ctx context.Context) error {
	log := filepath.Join(k.Dir, "kdc.log")
	before := fileSize(log)
	cmd := exec.CommandContext(ctx, k.sbin["krb5kdc"], "-n", "-r", k.Realm, "-P", filepath.Join(k.Dir, "krb5kdc.pid"))
	cmd.Dir = k.Dir
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}, k.Env()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("krbtest: krb5kdc: %w", err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	// Ready when its log says so (it then serves UDP and TCP) and TCP
	// accepts.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("krbtest: krb5kdc exited: %v: %s%s", waitErr, strings.TrimSpace(out.String()), tail(log, before))
		case <-time.After(20 * time.Millisecond):
		}
		if !strings.Contains(tail(log, before), "commencing operation") {
			continue
		}
		if c, err := net.DialTimeout("tcp", k.Addr, time.Second); err == nil {
			c.Close()
			k.cmd, k.done = cmd, done
			return nil
		}
	}
	_ = cmd.Process.Kill()
	<-done
	return fmt.Errorf("krbtest: krb5kdc did not start on %s within 15s: %s%s", k.Addr, strings.TrimSpace(out.String()), tail(log, before))
}

// randomSecret is a random master key for the database.
func randomSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("krbtest: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

func tail(p string, from int64) string {
	b, err := os.ReadFile(p)
	if err != nil || int64(len(b)) <= from {
		return ""
	}
	return "\n" + string(b[from:])
}

// kadmin runs kadmin.local queries, one per line on stdin (so passwords
// never appear on its command line), and fails on any error it reports.
func (k *KDC) kadmin(ctx context.Context, queries ...string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out, err := k.command(ctx, "kadmin.local", strings.Join(queries, "\n")+"\n", "-r", k.Realm)
	if err != nil {
		return string(out), err
	}
	// kadmin.local exits 0 when a query fails; its messages say so.
	for _, l := range strings.Split(string(out), "\n") {
		low := strings.ToLower(l)
		if strings.Contains(low, "while ") || strings.Contains(low, "error") || strings.Contains(low, "usage:") {
			return string(out), fmt.Errorf("krbtest: kadmin.local: %s", strings.TrimSpace(l))
		}
	}
	return string(out), nil
}

// AddUser creates the principal name@Realm with password. The password
// reaches kadmin.local on stdin.
func (k *KDC) AddUser(ctx context.Context, name, password string) error {
	if strings.ContainsAny(name, " \n\"") || password == "" || strings.ContainsAny(password, "\n\"\\") {
		return fmt.Errorf("krbtest: bad principal %q, or a password that is empty or holds a quote, backslash or newline", name)
	}
	_, err := k.kadmin(ctx, "addprinc -requires_preauth -pw \""+password+"\" "+name)
	return err
}

// AddService creates the service principal spn (e.g. "HTTP/host") with a
// random key, if it does not exist yet.
func (k *KDC) AddService(ctx context.Context, spn string) error {
	if strings.ContainsAny(spn, " \n\"") {
		return fmt.Errorf("krbtest: bad principal %q", spn)
	}
	out, _ := k.kadmin(ctx, "getprinc "+spn)
	if strings.Contains(out, "Principal: "+spn+"@") {
		return nil
	}
	_, err := k.kadmin(ctx, "addprinc -randkey "+spn)
	return err
}

// Keytab exports the current keys of principals to a keytab (MIT keytab
// file format), without changing them.
func (k *KDC) Keytab(ctx context.Context, principals ...string) ([]byte, error) {
	f, err := os.CreateTemp(k.Dir, "keytab-")
	if err != nil {
		return nil, fmt.Errorf("krbtest: %w", err)
	}
	p := f.Name()
	f.Close()
	os.Remove(p) // ktadd creates it
	defer os.Remove(p)
	var qs []string
	for _, pr := range principals {
		if strings.ContainsAny(pr, " \n\"") {
			return nil, fmt.Errorf("krbtest: bad principal %q", pr)
		}
		qs = append(qs, fmt.Sprintf("ktadd -k %s -norandkey %s", p, pr))
	}
	if _, err := k.kadmin(ctx, qs...); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("krbtest: keytab: %w", err)
	}
	return b, nil
}

// ServiceKeytab creates spn if needed and returns its keytab: what a
// service (the lab's WinRM face) is given.
func (k *KDC) ServiceKeytab(ctx context.Context, spn string) ([]byte, error) {
	if err := k.AddService(ctx, spn); err != nil {
		return nil, err
	}
	return k.Keytab(ctx, spn)
}

// Rekey gives principal new random keys (a new key version): keytabs
// exported before no longer decrypt its tickets.
func (k *KDC) Rekey(ctx context.Context, principal string) error {
	if strings.ContainsAny(principal, " \n\"") {
		return fmt.Errorf("krbtest: bad principal %q", principal)
	}
	_, err := k.kadmin(ctx, "cpw -randkey "+principal)
	return err
}

// Close stops the KDC and removes its directory.
func (k *KDC) Close() error {
	k.closeOnce.Do(func() {
		if k.cmd != nil {
			_ = k.cmd.Process.Kill()
			<-k.done
		}
		if k.logf != nil {
			if b, err := os.ReadFile(filepath.Join(k.Dir, "kdc.log")); err == nil {
				k.logf("krbtest: kdc log:\n%s", b)
			}
		}
		k.closeErr = os.RemoveAll(k.Dir)
	})
	return k.closeErr
}

// Kinit gets a TGT for principal (name or name@REALM) into the
// credential cache file ccache with MIT's kinit (krb5-user), the password
// on its stdin; opts are further kinit options ("-f": forwardable).
func (k *KDC) Kinit(ctx context.Context, principal, password, ccache string, opts ...string) error {
	kinit, err := exec.LookPath("kinit")
	if err != nil {
		return fmt.Errorf("%w: kinit: %w: %s", ErrUnavailable, err, Install)
	}
	cmd := exec.CommandContext(ctx, kinit, append(opts, principal)...)
	cmd.Env = append(append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}, k.Env()...), "KRB5CCNAME=FILE:"+ccache)
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("krbtest: kinit %s: %w: %s", principal, err, strings.TrimSpace(string(out)))
	}
	return nil
}
