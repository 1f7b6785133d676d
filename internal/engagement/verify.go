package engagement

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/relaylock/relaylock/report/evidence"
)

// VerifyOutcome is what Verify found; printed as text, or as JSON with
// --format json.
type VerifyOutcome struct {
	Evidence string `json:"evidence"`
	ReportID string `json:"report_id,omitempty"`
	Digest   string `json:"digest,omitempty"`
	// SealedDigest is the digest the seal records; Digest (recomputed
	// from the file) equals it when the content matches the seal.
	SealedDigest string `json:"sealed_digest,omitempty"`
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

func checkEvidence(path, pubkey string) (*VerifyOutcome, error) {
	var trusted ed25519.PublicKey
	if pubkey != "" {
		k, err := evidence.LoadPublicKey(pubkey)
		if err != nil {
			return nil, err
		}
		trusted = k
	}
	o := &VerifyOutcome{Evidence: path, OK: []string{}, Notes: []string{}, Problems: []string{}}
	b, r, err := evidence.CheckFile(path)
	if err != nil {
		return o, err
	}
	o.ReportID, o.Digest, o.SealedDigest = b.ID, r.Digest, r.SealedDigest
	o.OK = append(o.OK, r.OK...)
	o.Problems = append(o.Problems, r.Problems...)
	o.Notes = append(o.Notes, r.Notes...)
	sc, err := evidence.VerifySignatureDigest(path, r.Digest, trusted)
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

// VerifyOptions are the settings of a verification.
type VerifyOptions struct {
	// Path is the evidence file.
	Path string
	// PubKey, when given, requires a signature by the public key in this
	// file.
	PubKey string
	// Verbose lists every section and file that matched.
	Verbose bool
	// Format is text or json.
	Format string
}

// Verify recomputes every hash of the evidence file and checks its
// signature, and prints what it found. A mismatch exits with ExitError.
func Verify(ctx context.Context, e *Env, vo VerifyOptions) error {
	path, verbose, format := vo.Path, vo.Verbose, vo.Format
	if format != "text" && format != "json" {
		return Usagef("--format must be text or json")
	}
	o, err := checkEvidence(path, vo.PubKey)
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
			return WithCode(ExitError, fmt.Errorf("verify %s: %s", path, evidence.Count(len(o.Problems), "problem", "problems")))
		}
		return nil
	}
	if err != nil {
		return err
	}
	w := PrintableLines{W: e.Stdout} // an evidence file to verify may come from anyone
	fmt.Fprintf(w, "evidence: %s\nreport id: %s\ndigest:   %s %s\n", path, o.ReportID, o.Digest, digestState(o))
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
		return WithCode(ExitError, fmt.Errorf("verify %s: %s", path, evidence.Count(len(o.Problems), "problem", "problems")))
	}
	fmt.Fprintf(w, "verified: every hash matches\n")
	return nil
}

// digestState says what the digest line shows: the digest recomputed
// from the file's content, and whether the seal records the same one.
func digestState(o *VerifyOutcome) string {
	switch o.SealedDigest {
	case "":
		return "(recomputed; the file has no sealed digest)"
	case o.Digest:
		return "(recomputed; equals the sealed digest)"
	}
	return "(recomputed; the sealed digest is " + o.SealedDigest + ")"
}
