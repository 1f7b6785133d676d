// Package engagement runs relaylock's jobs: audit mail servers for open
// relay, inspect, remediate and roll back Windows mail hosts over WinRM,
// re-test from outside, and keep the evidence and the report of the
// engagement. Each job has one plain Options struct and one function that
// takes a context first: Audit, Inspect, Doctor, Remediate, Rollback,
// Fix, Report, Verify, Keygen, Lab and Demo. Everything a job touches
// outside its options (the standard streams, the environment, the test
// seams) is in an Env.
//
// It does not parse a command line: cmd/relaylock maps its flags into the
// Options once, and hands in a function wherever a printed command must
// repeat the flags as they were typed (RemediateOptions.RollbackCommand,
// LabOptions.TryCommands, DemoOptions.Fix). Values are checked when the
// job needs them, in the order the command line has always checked them;
// a bad one is a UsageError (exit code 2) that names the flag it came
// from, which is what the operator typed.
package engagement
