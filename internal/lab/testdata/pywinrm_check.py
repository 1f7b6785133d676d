"""Cross-check the lab's WS-Management face with Debian's python3-winrm.

Run by pywinrm_test.go with /usr/bin/python3:

    pywinrm_check.py URL TRANSPORT USER CA_FILE WAITING_COMMAND ENCRYPTION

The password comes from RELAYLOCK_LAB_PASSWORD (never argv). CA_FILE is
"" for plain HTTP. WAITING_COMMAND is a command line the lab runs only
once its stdin is complete (pywinrm 0.3.0 cannot send stdin), used to see
a Receive long-poll end in the OperationTimeout fault. ENCRYPTION is
pywinrm's message_encryption: "never", or "always" for NTLM message
encryption (MS-WSMV 2.2.9.1) over plain HTTP. Prints one JSON
object with what happened; the Go test asserts on it.
"""
import json
import os
import sys
import time

import winrm
from winrm.exceptions import (InvalidCredentialsError, WinRMError,
                              WinRMOperationTimeoutError)

url, transport, user, ca, waiting, encryption = sys.argv[1:7]
password = os.environ["RELAYLOCK_LAB_PASSWORD"]
opts = dict(transport=transport, message_encryption=encryption,
            read_timeout_sec=30, operation_timeout_sec=20)
if url.startswith("https"):
    opts.update(server_cert_validation="validate", ca_trust_path=ca)
result = {}

s = winrm.Session(url, auth=(user, password), **opts)
r = s.run_cmd("echo", ["hello", "pywinrm"])
result["echo"] = {"stdout": r.std_out.decode(), "stderr": r.std_err.decode(), "code": r.status_code}
r = s.run_cmd("exit", ["/b", "7"])
result["exit_code"] = r.status_code
r = s.run_cmd("hostname")
result["hostname"] = r.std_out.decode()
r = s.run_cmd("format", ["c:"])
result["unknown"] = {"stderr": r.std_err.decode(), "code": r.status_code}

# Protocol level: a Receive on a command still waiting for stdin is held
# for the OperationTimeout and answered with the w:TimedOut fault, which
# pywinrm turns into WinRMOperationTimeoutError.
popts = dict(opts)
popts.update(operation_timeout_sec=1, read_timeout_sec=5)
p = winrm.Protocol(url, username=user, password=password, **popts)
shell = p.open_shell(codepage=65001)
cid = p.run_command(shell, waiting)
start = time.monotonic()
try:
    p._raw_get_command_output(shell, cid)
    result["long_poll"] = "answered"
except WinRMOperationTimeoutError:
    result["long_poll"] = "timed out"
result["long_poll_seconds"] = time.monotonic() - start
p.cleanup_command(shell, cid)
p.close_shell(shell)
try:
    p.run_command(shell, "echo x")
    result["deleted_shell"] = "accepted"
except WinRMError as e:
    result["deleted_shell"] = str(e)

bad = winrm.Session(url, auth=(user, password + "x"), **opts)
try:
    bad.run_cmd("echo", ["x"])
    result["bad_password"] = "accepted"
except InvalidCredentialsError as e:
    result["bad_password"] = "InvalidCredentialsError: " + str(e)

print(json.dumps(result))
