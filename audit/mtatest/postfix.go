package mtatest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// postfixMaster finds Postfix's master(8) daemon.
func postfixMaster() (string, error) {
	dir := "/usr/lib/postfix/sbin"
	if out, err := exec.Command("postconf", "-d", "-h", "daemon_directory").Output(); err == nil {
		dir = strings.TrimSpace(string(out))
	}
	master := filepath.Join(dir, "master")
	if _, err := os.Stat(master); err != nil {
		return "", fmt.Errorf("%w: postfix: %v", ErrUnavailable, err)
	}
	if _, err := exec.LookPath("postfix"); err != nil {
		return "", fmt.Errorf("%w: postfix: %v", ErrUnavailable, err)
	}
	return master, nil
}

// postfixRelayRestrictions returns smtpd_relay_restrictions for a mode;
// "" keeps Postfix's default (permit_mynetworks,
// permit_sasl_authenticated, defer_unauth_destination).
//
// Postfix refuses to start smtpd when no relay restriction list contains
// reject_unauth_destination or an equivalent, so every open mode is a
// permit placed before it, as misconfigured servers have it.
func postfixRelayRestrictions(m Mode, domain string) string {
	switch m {
	case ClosedReject:
		return "permit_mynetworks, reject_unauth_destination"
	case BounceAfterAccept:
		// Mail from the null sender cannot bounce: such a server drops
		// it (Postfix would send a double bounce to postmaster). DISCARD
		// drops it at the door, so that the "<>" transport below only
		// ever carries Postfix's own bounces.
		return "permit_mynetworks, check_sender_access inline:{ <>=DISCARD }, check_client_access static:OK, reject_unauth_destination"
	case OpenClientAccess:
		return "permit_mynetworks, check_client_access static:OK, reject_unauth_destination"
	case OpenNullSender:
		// smtpd_null_access_lookup_key is "<>" by default.
		return "permit_mynetworks, check_sender_access inline:{ <>=OK }, reject_unauth_destination"
	case OpenLocalSender:
		return "permit_mynetworks, check_sender_access inline:{ " + domain + "=OK }, reject_unauth_destination"
	}
	return ""
}

// preparePostfix writes main.cf and master.cf for a private instance
// (postconf(5), master(5)), creates its queue with `postfix check`, and
// sets up the command that runs master(8) in the foreground.
func (i *Instance) preparePostfix(cfg Config) error {
	master, err := postfixMaster()
	if err != nil {
		return err
	}
	conf := filepath.Join(i.Dir, "conf")
	queue := filepath.Join(i.Dir, "queue")
	data := filepath.Join(i.Dir, "data")
	for _, d := range []string{conf, queue, data} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		return fmt.Errorf("%w: postfix user: %v", ErrUnavailable, err)
	}
	uid, _ := strconv.Atoi(pf.Uid)
	gid, _ := strconv.Atoi(pf.Gid)
	if err := os.Chown(data, uid, gid); err != nil {
		return err
	}
	maillog := filepath.Join(i.Dir, "maillog")
	mynetworks := TrustedAddr + "/32"
	if cfg.Mode == OpenMynetworks {
		mynetworks = "127.0.0.0/8"
	}
	mainCF := []string{
		"compatibility_level = 3.6",
		"queue_directory = " + queue,
		"data_directory = " + data,
		"mail_owner = postfix",
		"setgid_group = postdrop",
		"myhostname = " + cfg.Hostname,
		"mydomain = " + cfg.Domain,
		"myorigin = $mydomain",
		"mydestination = $myhostname, $mydomain, localhost",
		// The listener is on 127.0.0.x, which is not an interface
		// address (only 127.0.0.1 is), so it is declared the way a
		// NAT-ed server declares its public address: Postfix then
		// treats user@[127.0.0.x] as local.
		"inet_interfaces = 127.0.0.1",
		"proxy_interfaces = " + i.Addr.Addr().String(),
		"inet_protocols = ipv4",
		"mynetworks = " + mynetworks,
		// Everything that leaves goes to the test's sink; no DNS.
		fmt.Sprintf("relayhost = [%s]:%d", cfg.RelayHost.Addr(), cfg.RelayHost.Port()),
		"default_transport = smtp",
		"smtp_dns_support_level = disabled",
		"smtp_host_lookup = native",
		"smtp_tls_security_level = none",
		// postmaster is the domain's only mailbox; its mail is dropped.
		"alias_maps =",
		"alias_database =",
		"local_recipient_maps = inline:{ postmaster=ok }",
		"local_transport = discard:local mailbox",
		"biff = no",
		"maillog_file = " + maillog,
		"maillog_file_prefixes = " + i.Dir,
		"queue_run_delay = 2s",
		"minimal_backoff_time = 2s",
		"maximal_backoff_time = 4s",
	}
	if !cfg.StockErrorLimits {
		// Tests make many refused attempts in a row: do not sleep a
		// second before each reject (smtpd_error_sleep_time, default
		// 1s). The relay decisions are unchanged.
		mainCF = append(mainCF, "smtpd_error_sleep_time = 0s", "smtpd_soft_error_limit = 100", "smtpd_hard_error_limit = 200")
	}
	if cfg.TLS {
		// smtpd reads the key as root, before it drops privileges.
		cert, key, err := writeCert(i.Dir, cfg.Hostname, 0, 0)
		if err != nil {
			return err
		}
		mainCF = append(mainCF, "smtpd_tls_security_level = may", "smtpd_tls_cert_file = "+cert,
			"smtpd_tls_key_file = "+key, "smtpd_tls_loglevel = 1")
	}
	if i.Addr.Addr().Is6() {
		// ::1 is an interface address; the client side stays IPv4.
		mainCF[slices.Index(mainCF, "inet_interfaces = 127.0.0.1")] = "inet_interfaces = 127.0.0.1, [::1]"
		mainCF[slices.Index(mainCF, "proxy_interfaces = ::1")] = "proxy_interfaces ="
		mainCF[slices.Index(mainCF, "inet_protocols = ipv4")] = "inet_protocols = all"
	}
	if cfg.Mode == BounceAfterAccept {
		// Bounces are from the null sender, looked up as "<>"
		// (empty_address_default_transport_maps_lookup_key).
		// smtpd would refuse recipients that resolve to the error
		// transport at RCPT time; this server validates nothing.
		mainCF = append(mainCF, "relayhost =", "smtpd_reject_unlisted_recipient = no",
			"default_transport = error:5.7.1 relaying is not allowed here",
			fmt.Sprintf("sender_dependent_default_transport_maps = inline:{ <>=smtp:[%s]:%d }", cfg.RelayHost.Addr(), cfg.RelayHost.Port()))
	}
	if cfg.PolicyService.IsValid() {
		mainCF = append(mainCF, fmt.Sprintf("smtpd_recipient_restrictions = check_policy_service inet:%s:%d",
			cfg.PolicyService.Addr(), cfg.PolicyService.Port()))
	}
	if cfg.DiscardOutbound {
		mainCF = append(mainCF, "relayhost =", "default_transport = discard:accepted and dropped")
	}
	if cfg.AcceptAnyLocal {
		mainCF[slices.Index(mainCF, "local_recipient_maps = inline:{ postmaster=ok }")] = "local_recipient_maps ="
	}
	if r := postfixRelayRestrictions(cfg.Mode, cfg.Domain); r != "" {
		mainCF = append(mainCF, "smtpd_relay_restrictions = "+r)
	}
	// master(5): no chroot, so the daemons need nothing copied into the
	// queue directory.
	masterCF := []string{
		i.Addr.String() + " inet n - n - - smtpd", // [::1]:port for IPv6
		"pickup    unix  n - n 60 1 pickup",
		"cleanup   unix  n - n -  0 cleanup",
		"qmgr      unix  n - n 300 1 qmgr",
		"rewrite   unix  - - n -  - trivial-rewrite",
		"bounce    unix  - - n -  0 bounce",
		"defer     unix  - - n -  0 bounce",
		"trace     unix  - - n -  0 bounce",
		"verify    unix  - - n -  1 verify",
		"flush     unix  n - n 1000? 0 flush",
		"proxymap  unix  - - n -  - proxymap",
		"smtp      unix  - - n -  - smtp",
		"relay     unix  - - n -  - smtp",
		"error     unix  - - n -  - error",
		"retry     unix  - - n -  - error",
		"discard   unix  - - n -  - discard",
		"anvil     unix  - - n -  1 anvil",
		"scache    unix  - - n -  1 scache",
		"postlog   unix-dgram n - n - 1 postlogd",
		"tlsmgr    unix  - - n 1000? 1 tlsmgr",
	}
	if err := writeLines(filepath.Join(conf, "main.cf"), mainCF); err != nil {
		return err
	}
	if err := writeLines(filepath.Join(conf, "master.cf"), masterCF); err != nil {
		return err
	}
	// Postfix waits until a configuration file is a couple of seconds
	// old before it trusts it not to be half written (it re-reads
	// main.cf every 300 ms until then), which cost 2 s per start.
	old := time.Now().Add(-time.Minute)
	for _, f := range []string{"main.cf", "master.cf"} {
		if err := os.Chtimes(filepath.Join(conf, f), old, old); err != nil {
			return err
		}
	}
	// `postfix check` creates the queue directories with their owners.
	if out, err := exec.Command("postfix", "-c", conf, "check").CombinedOutput(); err != nil {
		return fmt.Errorf("postfix check: %v: %s", err, out)
	}
	i.logs = append(i.logs, maillog)
	// -d: stay in the foreground, so the test owns the process.
	i.cmd = exec.Command(master, "-c", conf, "-d")
	return nil
}

func writeLines(path string, lines []string) error {
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}
