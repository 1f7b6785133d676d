"""Cross-check the lab's Kerberos acceptor with Debian's python3-winrm.

Run by pywinrm_kerberos_test.go with /usr/bin/python3:

    pywinrm_kerberos.py URL CA_FILE HOSTNAME DELEGATE

Kerberos comes from python3-requests-kerberos over python3-kerberos, that
is MIT GSSAPI: the ticket-granting ticket is in the credential cache
named by KRB5CCNAME (the test ran kinit), the KDC in the krb5.conf named
by KRB5_CONFIG. pywinrm asks for mutual authentication and, over HTTPS,
no message encryption; HOSTNAME is the host part of the service
principal (HTTP@HOSTNAME), since URL names 127.0.0.1. DELEGATE "yes" asks
for delegation (pywinrm's kerberos_delegation: a forwarded TGT in the
authenticator), which relaylock never does. Prints one JSON
object; the Go test asserts on it.
"""
import json
import sys

import winrm
from winrm.exceptions import InvalidCredentialsError, WinRMError

url, ca, hostname, delegate = sys.argv[1:5]
result = {}
try:
    s = winrm.Session(url, auth=(None, None), transport="kerberos",
                      server_cert_validation="validate", ca_trust_path=ca,
                      kerberos_hostname_override=hostname,
                      kerberos_delegation=(delegate == "yes"),
                      read_timeout_sec=30, operation_timeout_sec=20)
    r = s.run_cmd("hostname")
    result["hostname"] = r.std_out.decode()
    result["code"] = r.status_code
    r = s.run_cmd("echo", ["kerberos", "ok"])
    result["echo"] = r.std_out.decode()
except (InvalidCredentialsError, WinRMError) as e:
    result["error"] = type(e).__name__ + ": " + str(e)
except Exception as e:  # requests_kerberos / GSSAPI failures
    result["error"] = type(e).__name__ + ": " + str(e)
print(json.dumps(result))
