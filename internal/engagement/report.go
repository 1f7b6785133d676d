package engagement

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/relaylock/relaylock/report"
	"github.com/relaylock/relaylock/report/evidence"
)

// ReportOptions are the settings of a report.
type ReportOptions struct {
	Evidence string
	Output   string
	SignKey  string
	// Accept renders evidence that does not verify (--accept-modified).
	Accept bool
	Render report.Options
}

func (o ReportOptions) validate() error {
	switch {
	case o.Evidence == "":
		return Usagef("report: --evidence FILE is required")
	case o.Output == "":
		return Usagef("report: -o FILE is required")
	case o.Output == "-" || o.Output == "/dev/stdout":
		return Usagef("report: refusing to write the PDF to stdout; give a file name with -o")
	case o.Accept && o.SignKey != "":
		return Usagef("report: --accept-modified cannot be combined with --sign-key: modified evidence is never signed")
	}
	if a, b := filepath.Clean(o.Output), filepath.Clean(o.Evidence); a == b {
		return Usagef("report: -o %s would overwrite the evidence file", o.Output)
	}
	return nil
}

// Report verifies the evidence, renders the PDF, records it in the
// evidence, and signs. Evidence that does not verify is refused, or with
// Accept rendered under the modified banner and left as it is.
func Report(ctx context.Context, e *Env, o ReportOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	b, r, err := evidence.LoadVerified(o.Evidence)
	var mod *evidence.ModifiedError
	switch {
	case errors.As(err, &mod) && o.Accept:
		o.Render.Modified = r.Modified()
		fmt.Fprintf(e.Stderr, "relaylock: warning: %s does not match its seal; rendering it marked %q on every page, and not recording the report in it\n", o.Evidence, report.ModifiedBanner)
		WriteMismatches(e.Stderr, r)
		if err := checkReportOutput(o, b); err != nil {
			return err
		}
		if err := checkReportClient(o, b); err != nil {
			return err
		}
		if _, err := report.WriteFile(o.Output, b, o.Render); err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "report:   %s (rendered from MODIFIED evidence: %s)\n", o.Output, strings.Join(o.Render.Modified, ", "))
		return nil
	case errors.As(err, &mod):
		WriteMismatches(e.Stderr, r)
		return WithCode(ExitError, fmt.Errorf("report: %w\nhint: the report is rendered only from evidence that verifies; --accept-modified renders it marked as modified", err))
	case err != nil:
		return err
	}
	if err := checkReportOutput(o, b); err != nil {
		return err
	}
	if err := checkReportClient(o, b); err != nil {
		return err
	}
	if o.SignKey != "" {
		// Read the key first: a bad key fails before anything is written,
		// and the cover names the key that will sign.
		k, err := evidence.LoadPrivateKey(o.SignKey)
		if err != nil {
			return err
		}
		o.Render.SigningKey = evidence.Fingerprint(k.Public().(ed25519.PublicKey))
	}
	prov, err := report.WriteFile(o.Output, b, o.Render)
	if err != nil {
		return err
	}
	a, err := evidence.RecordRendered(ctx, o.Evidence, o.Output, evidence.ArtifactReport, prov)
	if err != nil {
		return fmt.Errorf("record report in evidence: %w", err)
	}
	fmt.Fprintf(e.Stdout, "report:   %s (%d bytes)\nsha256:   %s\ndigest:   %s (evidence, as printed in the report)\n", o.Output, a.Size, a.SHA256, a.EvidenceDigest)
	if a.Client != "" {
		fmt.Fprintf(e.Stdout, "client:   %s (given with --client; the evidence names none; recorded with the report)\n", a.Client)
	}
	if a.TemplateSHA256 != "" {
		fmt.Fprintf(e.Stdout, "texts:    sha256 %s (custom texts from --template; recorded with the report)\n", a.TemplateSHA256)
	}
	if o.SignKey != "" {
		s, err := evidence.Sign(o.Evidence, o.Output, o.SignKey)
		if err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		fmt.Fprintf(e.Stdout, "signed:   %s\nkey:      %s\n", evidence.SignaturePath(o.Evidence), s.Fingerprint)
	}
	return nil
}

// checkReportClient refuses a --client that differs from the client the
// evidence names: the report must not say what the sealed evidence does
// not (usage, exit 2).
func checkReportClient(o ReportOptions, b *evidence.Bundle) error {
	if report.CheckClient(b, o.Render.Client) != nil {
		return Usagef("report: --client %q differs from the client the evidence names, %q: the report prints the evidence's; leave --client out (it is only for evidence that names no client)", o.Render.Client, b.Engagement.Client)
	}
	return nil
}

// checkReportOutput refuses an -o that names (by os.SameFile, so through
// links and other spellings too) a file the evidence depends on: the
// evidence itself, its signature, lock or journal, the signing key, the
// logo, a backup it records, or an artifact it records other than a
// report (re-rendering a report in place is how a report is brought up
// to date; its record is replaced too). With --accept-modified no
// recorded artifact may be replaced: a report of modified evidence must
// not take the place of one rendered from sealed evidence. Any other
// existing regular file is refused too, unless the evidence records it as
// its own report (whose SHA-256 verification has checked): another
// evidence file's report, or an unrelated file, is never silently
// replaced. There is no
// flag to override this (remove the file first). Anything that is not a
// regular file is refused when written (atomicfile).
func checkReportOutput(o ReportOptions, b *evidence.Bundle) error {
	fi, err := os.Stat(o.Output)
	if err != nil {
		return nil // nothing there to lose; the write reports other errors
	}
	type named struct{ what, path string }
	files := []named{
		{"the evidence file", o.Evidence},
		{"the evidence's signature", evidence.SignaturePath(o.Evidence)},
		{"the evidence's lock", o.Evidence + ".lock"},
		{"the evidence's journal", journalPath(o.Evidence)},
	}
	if o.SignKey != "" {
		files = append(files, named{"the signing key", o.SignKey}, named{"the signing key's public half", o.SignKey + ".pub"})
	}
	if o.Render.LogoPNG != "" {
		files = append(files, named{"the logo", o.Render.LogoPNG})
	}
	for _, f := range files {
		if sameFile(f.path, o.Output) {
			return Usagef("report: -o %s is %s (%s): refusing to replace it; name a new file", o.Output, f.what, f.path)
		}
	}
	for i, bk := range b.Backups {
		if sameRecordedFile(bk.File, o.Evidence, o.Output) {
			return Usagef("report: -o %s is backup %s recorded in the evidence (backups[%d]): refusing to replace it; name a new file", o.Output, bk.File, i)
		}
	}
	for i, a := range b.Artifacts {
		if (o.Accept || a.Kind != evidence.ArtifactReport) && sameRecordedFile(a.Path, o.Evidence, o.Output) {
			why := ""
			if o.Accept {
				why = ", rendered from the sealed evidence; a report of modified evidence must not take its place"
			}
			return Usagef("report: -o %s is %s %s recorded in the evidence (artifacts[%d]%s): refusing to replace it; name a new file", o.Output, orDash(a.Kind), a.Path, i, why)
		}
	}
	if !fi.Mode().IsRegular() {
		return nil // refused when written
	}
	for _, a := range b.Artifacts {
		if a.Kind == evidence.ArtifactReport && sameRecordedFile(a.Path, o.Evidence, o.Output) {
			// This evidence's own report (verification checked that it is
			// the file recorded): render it again in place.
			return nil
		}
	}
	return Usagef("report: -o %s exists and is not a report this evidence records: refusing to replace it; name a new file, or remove it first if it is yours to replace", o.Output)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
