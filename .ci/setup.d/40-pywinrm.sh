# Debian's python3-winrm: an independent WinRM client that
# internal/lab/pywinrm_test.go runs (with /usr/bin/python3) against the
# lab's WS-Management server, over NTLM and Basic.
apt-get install -y --no-install-recommends python3-winrm
