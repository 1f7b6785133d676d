package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
)

func keygenCommand(e *env, run func(context.Context, *env, engagement.KeygenOptions) error) *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "make an Ed25519 key pair for signing evidence and reports",
		UsageText: "relaylock keygen -o KEY\n\nExit codes: 0 the key pair was written; 1 error (it never overwrites a key); 2 usage.",
		Description: "Writes the private key to KEY (PKCS #8 PEM, mode 0600) and the public key to KEY.pub\n" +
			"(PKIX PEM), and prints the key's fingerprint (SHA-256 of the raw public key). It never\n" +
			"overwrites a key. Sign with 'relaylock report --sign-key KEY'; give KEY.pub to whoever\n" +
			"checks the evidence ('relaylock verify --pubkey KEY.pub FILE').",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the private key to `KEY` and the public key to KEY.pub"},
		},
		Action: func(c *cli.Context) error {
			out := c.String("output")
			if out == "" || out == "-" {
				return usagef("keygen: -o KEY is required (the private key is never written to stdout)")
			}
			if c.NArg() > 0 {
				return usagef("keygen: unexpected argument %q", c.Args().First())
			}
			return run(c.Context, e, engagement.KeygenOptions{Output: out})
		},
	}
}
