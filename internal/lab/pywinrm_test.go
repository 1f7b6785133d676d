package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/needs"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// Debian's interpreter, not whatever python3 comes first on PATH (a pyenv
// one would not have the python3-winrm package).
const debianPython = "/usr/bin/python3"

// openSSLLegacy enables OpenSSL 3's legacy provider for the Python
// process: ntlm-auth 1.4 (python3-ntlm-auth) computes NTOWF with
// hashlib.new("md4"), which OpenSSL 3 only offers there (docs/winrm.md §3.2).
const openSSLLegacy = `openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
legacy = legacy_sect
[default_sect]
activate = 1
[legacy_sect]
activate = 1
`

func requirePywinrm(t *testing.T) {
	t.Helper()
	err := exec.Command(debianPython, "-c", "import winrm, requests_ntlm").Run()
	if err == nil {
		return
	}
	needs.Missing(t, "python3-winrm", fmt.Sprintf("not importable by %s (%v): apt-get install python3-winrm (.ci/setup.d/40-pywinrm.sh)", debianPython, err))
}

// TestPywinrm cross-checks the WS-Management face with an independent
// client: pywinrm 0.3.0 runs commands over HTTPS+NTLM (verifying the lab
// CA), HTTP+Basic and HTTP+NTLM, sees a long-poll end in the
// OperationTimeout fault, the shell-not-found fault after Delete, and
// InvalidCredentialsError for a wrong password. http-ntlm-sealed does all
// of that with NTLM message encryption (message_encryption='always',
// requests-ntlm and ntlm-auth sealing) against a listener that requires
// it (AllowUnencrypted=false, the Windows default): every SOAP message,
// faults included, must travel sealed both ways.
func TestPywinrm(t *testing.T) {
	requirePywinrm(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "openssl.cnf")
	if err := os.WriteFile(conf, []byte(openSSLLegacy), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		https     bool
		transport string
		sealed    bool
	}{
		{"https-ntlm", true, "ntlm", false},
		{"http-basic", false, "basic", false},
		{"http-ntlm", false, "ntlm", false},
		{"http-ntlm-sealed", false, "ntlm", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			allowUnencrypted := !tc.https && !tc.sealed
			ts := startWSMan(t, tc.https, WSManConfig{AllowUnencrypted: allowUnencrypted, MaxOperationTimeout: 5 * time.Second})
			encryption := "never"
			if tc.sealed {
				encryption = "always"
			}
			ca := ""
			scheme := "http"
			if tc.https {
				scheme = "https"
				ca = filepath.Join(t.TempDir(), "ca.pem")
				if err := os.WriteFile(ca, ts.ca, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			url := scheme + "://" + ts.Addr().String() + "/wsman"
			out := runPyWinRM(t, dir, []string{"OPENSSL_CONF=" + conf, "RELAYLOCK_LAB_PASSWORD=" + testPass},
				"pywinrm_check.py", url, tc.transport, testUser, ca, psframe.CommandLine(), encryption)
			var r struct {
				Echo struct {
					Stdout, Stderr string
					Code           int
				}
				ExitCode int `json:"exit_code"`
				Hostname string
				Unknown  struct {
					Stderr string
					Code   int
				}
				LongPoll        string  `json:"long_poll"`
				LongPollSeconds float64 `json:"long_poll_seconds"`
				DeletedShell    string  `json:"deleted_shell"`
				BadPassword     string  `json:"bad_password"`
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if r.Echo.Stdout != "hello pywinrm\r\n" || r.Echo.Stderr != "" || r.Echo.Code != 0 {
				t.Errorf("echo: %+v", r.Echo)
			}
			if r.ExitCode != 7 {
				t.Errorf("exit /b 7 gave %d", r.ExitCode)
			}
			if r.Hostname != testInfo.ComputerName+"\r\n" {
				t.Errorf("hostname %q", r.Hostname)
			}
			if r.Unknown.Code != 1 || !strings.Contains(r.Unknown.Stderr, "is not recognized as an internal or external command") {
				t.Errorf("unknown command: %+v", r.Unknown)
			}
			if r.LongPoll != "timed out" || r.LongPollSeconds < 0.8 {
				t.Errorf("long poll: %s after %.2fs", r.LongPoll, r.LongPollSeconds)
			}
			if !strings.Contains(r.DeletedShell, "shell was not found") || !strings.Contains(r.DeletedShell, "2150858843") {
				t.Errorf("run on a deleted shell: %s", r.DeletedShell)
			}
			if !strings.HasPrefix(r.BadPassword, "InvalidCredentialsError") {
				t.Errorf("bad password: %s", r.BadPassword)
			}
			if got := ntlmHandshakes(ts.WSMan); (got > 0) != (tc.transport == "ntlm") {
				t.Errorf("%d NTLM handshakes with transport %s", got, tc.transport)
			}
			// Every SOAP call was sealed exactly when it should be, and
			// over sealing some connection carried several messages (its
			// sequence numbers advanced).
			soap, sealed, maxSeq := SealStats(ts.Calls())
			if tc.sealed && (soap == 0 || sealed != soap || maxSeq < 3) {
				t.Errorf("%d of %d SOAP calls sealed, highest sequence number %d", sealed, soap, maxSeq)
			}
			if !tc.sealed && sealed != 0 {
				t.Errorf("%d sealed calls without message encryption", sealed)
			}
		})
	}
}

// runPyWinRM runs testdata/SCRIPT with Debian's python3 (and its
// python3-winrm) in a bare environment plus env, and returns its stdout;
// a failed run fails the test with the script's stderr.
func runPyWinRM(t *testing.T, home string, env []string, script string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(debianPython, append([]string{filepath.Join("testdata", script)}, args...)...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + home, "NO_PROXY=127.0.0.1,localhost,::1"}, env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("pywinrm: %v\n%s\n%s", err, out, stderr)
	}
	return out
}
