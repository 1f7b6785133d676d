package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/report/evidence"
)

func verifyCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "recompute every hash in an evidence file and check its signature",
		UsageText: "relaylock verify [--pubkey KEY.pub] FILE",
		Description: "Recomputes the SHA-256 of every section of the evidence file (audits, inspections,\n" +
			"plans, backups, changes, artifacts) and compares it with the seal; checks the backup and\n" +
			"report files it names when they are present; and checks the Ed25519 signature in\n" +
			"FILE.sig.json if there is one, printing the key's fingerprint. With --pubkey the\n" +
			"signature must exist and be made by that key. Exit status 0 when everything checks,\n" +
			"1 with each mismatch listed.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "pubkey", Usage: "require a signature by the public key in `KEY.pub`"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "list every section and file that matched, with its hash"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("verify: want one evidence FILE")
			}
			return runVerify(e, c.Args().First(), c.String("pubkey"), c.Bool("verbose"))
		},
	}
}

func runVerify(e *env, path, pubkey string, verbose bool) error {
	var trusted ed25519.PublicKey
	if pubkey != "" {
		k, err := evidence.LoadPublicKey(pubkey)
		if err != nil {
			return err
		}
		trusted = k
	}
	b, r, err := evidence.CheckFile(path)
	if err != nil {
		return err
	}
	w := e.Stdout
	fmt.Fprintf(w, "evidence: %s\nreport id: %s\ndigest:   %s\n", path, b.ID, r.Digest)
	if verbose {
		for _, l := range r.OK {
			fmt.Fprintf(w, "ok        %s\n", l)
		}
	} else {
		fmt.Fprintf(w, "ok        %d hashes match (-v lists them)\n", len(r.OK))
	}
	problems := r.Problems
	notes := r.Notes
	sc, err := evidence.VerifySignature(path, trusted)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if trusted != nil {
			problems = append(problems, "signature: "+evidence.SignaturePath(path)+" not found, but --pubkey requires one")
		} else {
			notes = append(notes, "not signed (no "+evidence.SignaturePath(path)+")")
		}
	case err != nil:
		problems = append(problems, err.Error())
	default:
		for _, l := range sc.OK {
			fmt.Fprintf(w, "ok        %s\n", l)
		}
		problems = append(problems, sc.Problems...)
		notes = append(notes, sc.Notes...)
		fmt.Fprintf(w, "key:      %s\n", sc.Signature.Fingerprint)
	}
	for _, l := range notes {
		fmt.Fprintf(w, "note      %s\n", l)
	}
	for _, l := range problems {
		fmt.Fprintf(w, "MISMATCH  %s\n", l)
	}
	if len(problems) > 0 {
		return withCode(exitError, fmt.Errorf("verify %s: %d problems", path, len(problems)))
	}
	fmt.Fprintf(w, "verified: every hash matches\n")
	return nil
}
