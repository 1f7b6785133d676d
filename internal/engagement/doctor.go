package engagement

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/doctor"
	"github.com/relaylock/relaylock/report/evidence"
)

// DoctorOptions are the settings of doctor.
type DoctorOptions struct {
	WinRM WinRMOptions
	// Format is text or json.
	Format   string
	Evidence EvidenceOptions
}

// Doctor checks, read-only, what relaylock needs on a Windows host and
// prints each check; a failed check exits with ExitError.
func Doctor(ctx context.Context, e *Env, o DoctorOptions) error {
	host, format := o.WinRM.Host, o.Format
	if err := readCommandArgs("doctor", host, format); err != nil {
		return err
	}
	cfg, warnings, err := o.WinRM.Config(e, host)
	if err != nil {
		return err
	}
	runner, w2, err := remediate.NewWinRMRunner(cfg)
	for _, w := range append(warnings, w2...) {
		fmt.Fprintf(e.Stderr, "relaylock: warning: %s\n", w)
	}
	if err != nil {
		return err
	}
	defer runner.Close()
	rep, err := doctor.Run(ctx, doctor.Options{Config: cfg, Runner: runner})
	if err != nil {
		return err
	}
	if err := newRecorder(ctx, e, o.Evidence, []string{host}).update(func(b *evidence.Bundle) {
		for _, ch := range rep.Checks {
			b.Log = append(b.Log, evidence.LogEntry{Time: rep.Time, Step: "doctor", Host: host, Message: ch.LogLine()})
		}
	}); err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := rep.WriteText(e.Stdout); err != nil {
		return err
	}
	if n := rep.Failed(); n > 0 {
		return WithCode(ExitError, fmt.Errorf("doctor: %d check(s) failed on %s", n, host))
	}
	return nil
}
