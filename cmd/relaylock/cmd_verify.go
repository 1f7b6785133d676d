package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
)

func verifyCommand(e *env, run func(context.Context, *env, engagement.VerifyOptions) error) *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "recompute every hash in an evidence file and check its signature",
		UsageText: "relaylock verify [--pubkey KEY.pub] [--format json] FILE\n\nExit codes: 0 every hash (and the signature) checks; 1 a mismatch or an unreadable file; 2 usage.",
		Description: "Recomputes the SHA-256 of every section of the evidence file (audits, inspections,\n" +
			"plans, backups, changes, artifacts) and compares it with the seal; checks the backup and\n" +
			"report files it names when they are present; and checks the Ed25519 signature in\n" +
			"FILE.sig.json if there is one, printing the key's fingerprint. With --pubkey the\n" +
			"signature must exist and be made by that key.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "pubkey", Usage: "require a signature by the public key in `FILE` (KEY.pub, written by relaylock keygen)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "list every section and file that matched, with its hash"},
			&cli.StringFlag{Name: "format", Value: "text", Usage: "output `FORMAT`: text or json (an object with evidence, report_id, digest, verified, ok, signature_ok, key_fingerprint, notes, problems)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("verify: want one evidence FILE")
			}
			return run(c.Context, e, engagement.VerifyOptions{Path: c.Args().First(), PubKey: c.String("pubkey"),
				Verbose: c.Bool("verbose"), Format: c.String("format")})
		},
	}
}
