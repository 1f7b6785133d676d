// Package engagement runs relaylock's jobs: audit mail servers for open
// relay, inspect, remediate and roll back Windows mail hosts over WinRM,
// re-test from outside, and keep the evidence and the report of the
// engagement. Each command has one plain Options struct and one function
// that takes a context first (Audit, Inspect, Doctor, Remediate,
// Rollback, Fix, Report, Verify, Keygen, Lab, Demo).
//
// It knows nothing of the command line: cmd/relaylock maps its flags into
// the Options once, and gives a function where a printed command line
// must repeat the flags as they were typed (RemediateOptions.RollbackCommand).
package engagement
