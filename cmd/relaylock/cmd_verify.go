package main

import (
	"crypto/ed25519"
	"encoding/json"
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
			format := c.String("format")
			if format != "text" && format != "json" {
				return usagef("--format must be text or json")
			}
			return runVerify(e, c.Args().First(), c.String("pubkey"), c.Bool("verbose"), format)
		},
	}
}

// verifyOutcome is what verify found; printed as text, or as JSON with
// --format json.
type verifyOutcome struct {
	Evidence string `json:"evidence"`
	ReportID string `json:"report_id,omitempty"`
	Digest   string `json:"digest,omitempty"`
	// Verified is true when every hash (and the signature, when there is
	// one or --pubkey asks for one) checks.
	Verified bool `json:"verified"`
	// OK lists each section and file whose hash matched.
	OK []string `json:"ok"`
	// SignatureOK lists what the signature check confirmed.
	SignatureOK []string `json:"signature_ok,omitempty"`
	// KeyFingerprint is the signing key's, when the file is signed.
	KeyFingerprint string   `json:"key_fingerprint,omitempty"`
	Notes          []string `json:"notes"`
	Problems       []string `json:"problems"`
}

func checkEvidence(path, pubkey string) (*verifyOutcome, error) {
	var trusted ed25519.PublicKey
	if pubkey != "" {
		k, err := evidence.LoadPublicKey(pubkey)
		if err != nil {
			return nil, err
		}
		trusted = k
	}
	o := &verifyOutcome{Evidence: path, OK: []string{}, Notes: []string{}, Problems: []string{}}
	b, r, err := evidence.CheckFile(path)
	if err != nil {
		return o, err
	}
	o.ReportID, o.Digest = b.ID, r.Digest
	o.OK = append(o.OK, r.OK...)
	o.Problems = append(o.Problems, r.Problems...)
	o.Notes = append(o.Notes, r.Notes...)
	sc, err := evidence.VerifySignature(path, trusted)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if trusted != nil {
			o.Problems = append(o.Problems, "signature: "+evidence.SignaturePath(path)+" not found, but --pubkey requires one")
		} else {
			o.Notes = append(o.Notes, "not signed (no "+evidence.SignaturePath(path)+")")
		}
	case err != nil:
		o.Problems = append(o.Problems, err.Error())
	default:
		o.SignatureOK = sc.OK
		o.Problems = append(o.Problems, sc.Problems...)
		o.Notes = append(o.Notes, sc.Notes...)
		o.KeyFingerprint = sc.Signature.Fingerprint
	}
	o.Verified = len(o.Problems) == 0
	return o, nil
}

func runVerify(e *env, path, pubkey string, verbose bool, format string) error {
	o, err := checkEvidence(path, pubkey)
	if format == "json" {
		if err != nil {
			if o == nil {
				return err // the public key, not the evidence
			}
			o.Problems = append(o.Problems, err.Error())
		}
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(o); jerr != nil {
			return jerr
		}
		if len(o.Problems) > 0 {
			return withCode(exitError, fmt.Errorf("verify %s: %d problems", path, len(o.Problems)))
		}
		return nil
	}
	if err != nil {
		return err
	}
	w := printableLines{W: e.Stdout} // an evidence file to verify may come from anyone
	fmt.Fprintf(w, "evidence: %s\nreport id: %s\ndigest:   %s\n", path, o.ReportID, o.Digest)
	if verbose {
		for _, l := range o.OK {
			fmt.Fprintf(w, "ok        %s\n", l)
		}
	} else {
		fmt.Fprintf(w, "ok        %d hashes match (-v lists them)\n", len(o.OK))
	}
	for _, l := range o.SignatureOK {
		fmt.Fprintf(w, "ok        %s\n", l)
	}
	if o.KeyFingerprint != "" {
		fmt.Fprintf(w, "key:      %s\n", o.KeyFingerprint)
	}
	for _, l := range o.Notes {
		fmt.Fprintf(w, "note      %s\n", l)
	}
	for _, l := range o.Problems {
		fmt.Fprintf(w, "MISMATCH  %s\n", l)
	}
	if len(o.Problems) > 0 {
		return withCode(exitError, fmt.Errorf("verify %s: %d problems", path, len(o.Problems)))
	}
	fmt.Fprintf(w, "verified: every hash matches\n")
	return nil
}
