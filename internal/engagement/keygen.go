package engagement

import (
	"context"
	"fmt"

	"github.com/relaylock/relaylock/report/evidence"
)

// KeygenOptions are the settings of keygen.
type KeygenOptions struct {
	// Output is the private key's file; the public key goes to
	// Output.pub. Neither is ever overwritten.
	Output string
}

// Keygen makes an Ed25519 key pair for signing evidence and reports and
// prints its fingerprint.
func Keygen(_ context.Context, e *Env, o KeygenOptions) error {
	out := o.Output
	pub, err := evidence.GenerateKey(out)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "private key: %s (keep it secret)\npublic key:  %s.pub\nfingerprint: %s\n", out, out, evidence.Fingerprint(pub))
	return nil
}
