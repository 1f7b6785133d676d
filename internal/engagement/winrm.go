package engagement

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/relaylock/relaylock/internal/atomicfile"
	"github.com/relaylock/relaylock/remediate"
)

// The WinRM credential rules (README "WinRM credentials"):
//
//   - the password never comes from a flag value (argv is visible to every
//     local user through ps and /proc, and lands in shell history): only
//     from RELAYLOCK_WINRM_PASSWORD, from a password file, or from a
//     no-echo prompt when stdin is a terminal;
//   - it only ever reaches remediate.WinRMConfig, never a script parameter,
//     a ScriptRun, the evidence or a log line.

// Environment variables read for WinRM.
const (
	EnvWinRMUser     = "RELAYLOCK_WINRM_USER"
	EnvWinRMPassword = "RELAYLOCK_WINRM_PASSWORD"
	EnvWinRMCA       = "RELAYLOCK_WINRM_CA"
)

// maxPasswordFile bounds what is read from --winrm-password-file.
const maxPasswordFile = 64 << 10

func readPasswordFromTerminal(e *Env) ([]byte, error) {
	if e.ReadPassword != nil {
		return e.ReadPassword()
	}
	return term.ReadPassword(int(os.Stdin.Fd()))
}

// WinRMOptions say how to reach a Windows host over WinRM and log on
// (README "WinRM credentials"). The password is never one of them: it
// comes from RELAYLOCK_WINRM_PASSWORD, PasswordFile or a no-echo prompt,
// and only ever reaches remediate.WinRMConfig.
type WinRMOptions struct {
	Host string
	Port int // 0: 5986 with HTTPS, 5985 without
	// User is DOMAIN\user, user@domain or a local user; "" falls back to
	// RELAYLOCK_WINRM_USER.
	User string
	Auth string // ntlm, basic, kerberos or certificate
	// HTTPS and HTTP are --winrm-https (on by default) and --winrm-http;
	// HTTPContradicts is set when both were given with the same value.
	HTTPS, HTTP      bool
	HTTPContradicts  bool
	CAFile           string
	Insecure         bool
	ServerName       string
	LegacyTLS        bool
	AllowUnencrypted bool
	PasswordFile     string
	// PasswordGiven: a password was given on the command line, which is
	// refused.
	PasswordGiven bool
	KrbConfig     string
	KrbRealm      string
	KrbCCache     string
	SPN           string
	ClientCert    string
	ClientKey     string
	// HopUser is the second-hop account ("" falls back to
	// RELAYLOCK_HOP_USER, then the WinRM account).
	HopUser         string
	HopPasswordFile string
	Timeout         time.Duration
}

// useHTTPS reports whether the host is reached over HTTPS.
func (w WinRMOptions) useHTTPS() bool { return w.HTTPS && !w.HTTP }

// Config builds the WinRM configuration for host (or w.Host when
// host is empty) from the options, the environment and, as a last resort,
// a terminal prompt. The warnings are about credentials
// (remediate.NewWinRMRunner returns the transport warnings itself).
// Mistakes in the options are usage errors (exit code 2).
func (w WinRMOptions) Config(e *Env, host string) (remediate.WinRMConfig, []string, error) {
	var warnings []string
	if w.PasswordGiven {
		return remediate.WinRMConfig{}, nil, Usagef("--winrm-password is not accepted: a password on the command line is visible to other users (ps, /proc) and stays in shell history.\n" +
			"Set " + EnvWinRMPassword + " in the environment, use --winrm-password-file FILE (mode 0600), or run on a terminal to be prompted")
	}
	if host == "" {
		host = w.Host
	}
	if host == "" {
		return remediate.WinRMConfig{}, nil, Usagef("no WinRM host: give --winrm-host HOST")
	}
	if w.HTTPContradicts {
		return remediate.WinRMConfig{}, nil, Usagef("--winrm-http and --winrm-https contradict each other")
	}
	https := w.useHTTPS()
	user := w.User
	if user == "" {
		user = e.Getenv(EnvWinRMUser)
	}
	cfg := remediate.WinRMConfig{
		Host: host, Port: w.Port, HTTPS: https,
		Insecure: w.Insecure, CACertFile: w.CAFile, TLSServerName: w.ServerName,
		Auth: strings.ToLower(w.Auth), User: user,
		KrbConfig: w.KrbConfig, KrbRealm: w.KrbRealm, KrbCCache: w.KrbCCache, SPN: w.SPN,
		ClientCertFile: w.ClientCert, ClientKeyFile: w.ClientKey,
		AllowUnencrypted: w.AllowUnencrypted,
		LegacyTLS:        w.LegacyTLS,
		OperationTimeout: w.Timeout,
	}
	if cfg.OperationTimeout < time.Second || cfg.OperationTimeout > time.Hour {
		return remediate.WinRMConfig{}, nil, Usagef("--winrm-timeout %s: want between 1s and 1h", cfg.OperationTimeout)
	}
	needPassword := cfg.Auth == remediate.AuthNTLM || cfg.Auth == remediate.AuthBasic ||
		(cfg.Auth == remediate.AuthKerberos && cfg.KrbCCache == "")
	if cfg.Auth == remediate.AuthNTLM || cfg.Auth == remediate.AuthBasic || cfg.Auth == remediate.AuthKerberos {
		if cfg.User == "" && needPassword {
			return remediate.WinRMConfig{}, nil, Usagef("no WinRM user: give --winrm-user USER or set %s", EnvWinRMUser)
		}
	}
	if needPassword {
		pw, pwWarnings, err := w.winrmPassword(e, cfg.User, host)
		if err != nil {
			return remediate.WinRMConfig{}, nil, err
		}
		warnings = append(warnings, pwWarnings...)
		cfg.Password = pw
	} else if w.PasswordFile != "" {
		warnings = append(warnings, "--winrm-password-file is not used with --winrm-auth "+cfg.Auth)
	}
	if err := w.hopCredential(e, &cfg, host); err != nil {
		return remediate.WinRMConfig{}, nil, err
	}
	// Configuration mistakes are usage errors; the transport warnings
	// come from NewWinRMRunner.
	if _, err := cfg.WithDefaults().Validate(); err != nil {
		return remediate.WinRMConfig{}, nil, UsageError{Msg: err.Error()}
	}
	return cfg, warnings, nil
}

// The second-hop account (remediate/hop.go), when it is not the WinRM one.
const (
	EnvHopUser     = "RELAYLOCK_HOP_USER"
	EnvHopPassword = "RELAYLOCK_HOP_PASSWORD"
)

// hopCredential fills cfg.HopUser and HopPassword from --hop-user (or
// $RELAYLOCK_HOP_USER) and --hop-password-file, $RELAYLOCK_HOP_PASSWORD or a
// prompt. Without --hop-user the WinRM credential is used (WinRMConfig.Hop).
func (w WinRMOptions) hopCredential(e *Env, cfg *remediate.WinRMConfig, host string) error {
	user := w.HopUser
	if user == "" {
		user = e.Getenv(EnvHopUser)
	}
	if user == "" {
		if w.HopPasswordFile != "" {
			return Usagef("--hop-password-file needs --hop-user")
		}
		return nil
	}
	cfg.HopUser = user
	if f := w.HopPasswordFile; f != "" {
		pw, _, err := readPasswordFile(f)
		if err != nil {
			return err
		}
		cfg.HopPassword = pw
		return nil
	}
	if pw := e.Getenv(EnvHopPassword); pw != "" {
		cfg.HopPassword = pw
		return nil
	}
	if strings.EqualFold(user, cfg.User) && cfg.Password != "" {
		cfg.HopPassword = cfg.Password
		return nil
	}
	if !e.StdinIsTerminal {
		return Usagef("no password for --hop-user %s: set %s, use --hop-password-file FILE, or run on a terminal to be prompted", user, EnvHopPassword)
	}
	fmt.Fprintf(e.Stderr, "Password of %s (for Active Directory and the Exchange shell on %s): ", user, host)
	b, err := readPasswordFromTerminal(e)
	fmt.Fprintln(e.Stderr)
	if err != nil {
		return fmt.Errorf("read password from the terminal: %w", err)
	}
	if len(b) == 0 {
		return errors.New("empty --hop-user password")
	}
	cfg.HopPassword = string(b)
	return nil
}

// winrmPassword finds the password: --winrm-password-file, then
// $RELAYLOCK_WINRM_PASSWORD, then a no-echo prompt on a terminal.
func (w WinRMOptions) winrmPassword(e *Env, user, host string) (string, []string, error) {
	var warnings []string
	envPW := e.Getenv(EnvWinRMPassword)
	if f := w.PasswordFile; f != "" {
		if envPW != "" {
			warnings = append(warnings, EnvWinRMPassword+" is ignored because --winrm-password-file is given")
		}
		pw, fw, err := readPasswordFile(f)
		return pw, append(warnings, fw...), err
	}
	if envPW != "" {
		return envPW, nil, nil
	}
	if !e.StdinIsTerminal {
		return "", nil, Usagef("no WinRM password for %s: set %s, use --winrm-password-file FILE, or run on a terminal to be prompted", user, EnvWinRMPassword)
	}
	fmt.Fprintf(e.Stderr, "WinRM password for %s at %s: ", user, host)
	b, err := readPasswordFromTerminal(e)
	fmt.Fprintln(e.Stderr)
	if err != nil {
		return "", nil, fmt.Errorf("read password from the terminal: %w", err)
	}
	if len(b) == 0 {
		return "", nil, errors.New("empty WinRM password")
	}
	return string(b), nil, nil
}

// readPasswordFile returns the first line of f, without its line ending
// and without a UTF-8 byte order mark (Notepad writes one); other spaces
// are kept as part of the password. A file other users can read is
// refused, one the group can read gets a warning (unix only).
func readPasswordFile(f string) (string, []string, error) {
	fh, err := atomicfile.Open(f)
	if err != nil {
		return "", nil, fmt.Errorf("password file: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return "", nil, fmt.Errorf("password file: %w", err)
	}
	if fi.IsDir() {
		return "", nil, Usagef("password file %s is a directory", f)
	}
	var warnings []string
	if w, err := checkSecretFileMode(f, fi); err != nil {
		return "", nil, err
	} else if w != "" {
		warnings = append(warnings, w)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxPasswordFile))
	if err != nil {
		return "", nil, fmt.Errorf("password file %s: %w", f, err)
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	line, _, _ := bytes.Cut(b, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return "", nil, Usagef("password file %s: the first line is empty", f)
	}
	return string(line), warnings, nil
}
