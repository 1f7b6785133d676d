package lab

import (
	"context"
	"fmt"
	"io"

	"github.com/relaylock/relaylock/internal/krbtest"
)

// KerberosRealm is a throwaway MIT KDC (internal/krbtest) for a lab
// whose WinRM face accepts Kerberos, as `relaylock lab --kerberos` runs
// it: realm krbtest.DefaultRealm (the lab domain's), the lab account as
// Administrator@REALM, loopback only. A nil *KerberosRealm is no realm.
type KerberosRealm struct {
	KDC *krbtest.KDC
}

// StartKerberosRealm starts the KDC with the lab account's password
// (given to kadmin.local on stdin). It stops when ctx ends or Close is
// called. krbtest.ErrUnavailable means MIT Kerberos is not installed.
func StartKerberosRealm(ctx context.Context, password string) (*KerberosRealm, error) {
	kdc, err := krbtest.Start(ctx, krbtest.Config{Domains: []string{LabExchangeDomain}})
	if err != nil {
		return nil, err
	}
	if err := kdc.AddUser(ctx, "Administrator", password); err != nil {
		_ = kdc.Close()
		return nil, err
	}
	return &KerberosRealm{KDC: kdc}, nil
}

// Config is the lab's KerberosConfig for this realm (nil for a nil
// realm): the lab's SPN is created and its keytab exported at Start.
func (r *KerberosRealm) Config() *KerberosConfig {
	if r == nil {
		return nil
	}
	return &KerberosConfig{Realm: r.KDC.Realm, KeytabFor: func(spn string) ([]byte, error) {
		return r.KDC.ServiceKeytab(context.Background(), spn)
	}}
}

// Print says how to use the realm with l: the krb5.conf, the principal
// and relaylock's Kerberos flags (nothing for a nil realm). caFile is the
// lab CA's file over HTTPS; sealed is a plain-HTTP lab that requires
// message encryption, which refuses this client's Kerberos.
func (r *KerberosRealm) Print(w io.Writer, l *Lab, caFile string, sealed bool) {
	if r == nil {
		return
	}
	fmt.Fprintf(w, "\nKerberos: KDC %s (MIT, realm %s), SPN %s, principal Administrator@%s\n", r.KDC.Addr, r.KDC.Realm, l.KerberosSPN, r.KDC.Realm)
	fmt.Fprintf(w, "  krb5.conf %s  (deleted when the lab stops)\n", r.KDC.Krb5Conf)
	fmt.Fprintln(w, "  the logon holds no network credentials (no delegation): relaylock passes the password to the second hop explicitly")
	var transport string
	switch {
	case l.HTTPS:
		transport = fmt.Sprintf(" --winrm-ca %s --winrm-server-name %s", caFile, l.TLSServerName)
	case sealed:
		fmt.Fprintln(w, "  relaylock's Kerberos does not encrypt messages: this listener (AllowUnencrypted=false) refuses it; use HTTPS or --http")
		return
	default:
		transport = " --winrm-http --winrm-allow-unencrypted"
	}
	fmt.Fprintf(w, "  relaylock inspect --winrm-host %s --winrm-port %d --winrm-auth kerberos --winrm-user Administrator@%s --krb5-conf %s --winrm-spn %s%s\n",
		l.WinRMHost, l.WinRMPort, r.KDC.Realm, r.KDC.Krb5Conf, l.KerberosSPN, transport)
}

// Close stops the KDC (nil-safe).
func (r *KerberosRealm) Close() error {
	if r == nil {
		return nil
	}
	return r.KDC.Close()
}
