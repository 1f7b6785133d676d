package krbtest

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/relaylock/relaylock/internal/needs"
)

func require(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		needs.Missing(t, "MIT Kerberos KDC", err.Error())
	}
}

// The KDC serves a real realm on loopback: a user logs on with its
// password (gokrb5, as masterzen/winrm does, and MIT kinit), gets a
// ticket for the service principal, and the exported keytab holds that
// principal's current key; after Rekey the old keytab's key is stale.
func TestKDC(t *testing.T) {
	require(t)
	k := Serve(t, Config{Domains: []string{"corp.example"}})
	ctx := context.Background()
	if err := k.AddUser(ctx, "alice", "Alice-Pw-1"); err != nil {
		t.Fatal(err)
	}
	spn := "HTTP/ex1.corp.example"
	ktb, err := k.ServiceKeytab(ctx, spn)
	if err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(k.Addr); host != "127.0.0.1" {
		t.Fatalf("KDC address %s is not loopback", k.Addr)
	}
	conf, err := os.ReadFile(k.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"dns_lookup_kdc = false", "dns_lookup_realm = false", "rdns = false", "kdc = " + k.Addr} {
		if !strings.Contains(string(conf), w) {
			t.Errorf("krb5.conf lacks %q:\n%s", w, conf)
		}
	}

	cfg, err := config.Load(k.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.NewWithPassword("alice", k.Realm, "Alice-Pw-1", cfg, client.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		t.Fatalf("login: %v", err)
	}
	tkt, _, err := cl.GetServiceTicket(spn)
	if err != nil {
		t.Fatalf("service ticket: %v", err)
	}
	kt := keytab.New()
	if err := kt.Unmarshal(ktb); err != nil {
		t.Fatal(err)
	}
	if err := tkt.DecryptEncPart(kt, nil); err != nil {
		t.Fatalf("the keytab does not decrypt the ticket: %v", err)
	}
	if got := tkt.DecryptedEncPart.CName.PrincipalNameString(); got != "alice" {
		t.Errorf("ticket client %q", got)
	}

	bad := client.NewWithPassword("alice", k.Realm, "wrong", cfg, client.DisablePAFXFAST(true))
	if err := bad.Login(); err == nil {
		t.Error("a wrong password logged on")
	}

	// MIT's own client, password on stdin.
	if kinit, err := exec.LookPath("kinit"); err == nil {
		cmd := exec.Command(kinit, "alice@"+k.Realm)
		cmd.Env = append(k.Env(), "KRB5CCNAME=FILE:"+t.TempDir()+"/cc")
		cmd.Stdin = strings.NewReader("Alice-Pw-1\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("kinit: %v: %s", err, out)
		}
	}

	if err := k.Rekey(ctx, spn); err != nil {
		t.Fatal(err)
	}
	cl2 := client.NewWithPassword("alice", k.Realm, "Alice-Pw-1", cfg, client.DisablePAFXFAST(true))
	tkt2, _, err := cl2.GetServiceTicket(spn)
	if err != nil {
		t.Fatal(err)
	}
	if err := tkt2.DecryptEncPart(kt, nil); err == nil {
		t.Error("the keytab exported before Rekey still decrypts new tickets")
	}
}

// Bad principals are refused before kadmin.local sees them, and a KDC
// that stops when its context ends leaves nothing behind.
func TestKDCInputsAndClose(t *testing.T) {
	require(t)
	ctx, cancel := context.WithCancel(context.Background())
	k, err := Start(ctx, Config{Realm: "OTHER.TEST", MaxLife: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"a b", "x\naddprinc evil", `q"`} {
		if err := k.AddService(ctx, bad); err == nil {
			t.Errorf("AddService(%q) succeeded", bad)
		}
	}
	if err := k.AddUser(ctx, "bob", `pw"; addprinc evil`); err == nil {
		t.Error("a password with a quote was accepted")
	}
	if err := k.AddUser(ctx, "bob", "Bob-Pw-1"); err != nil {
		t.Fatal(err)
	}
	if err := k.AddUser(ctx, "bob", "Bob-Pw-1"); err == nil {
		t.Error("adding bob twice succeeded: kadmin.local errors are not detected")
	}
	cancel()
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(k.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("KDC dir left behind: %v", err)
	}
	if c, err := net.DialTimeout("tcp", k.Addr, time.Second); err == nil {
		c.Close()
		t.Error("KDC still listens after Close")
	}
}
