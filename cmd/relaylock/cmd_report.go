package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/report"
	"github.com/relaylock/relaylock/report/evidence"
)

func reportCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "render the PDF report from an evidence file",
		UsageText: "relaylock report --evidence FILE -o report.pdf [--template DIR] [--logo PNG] [--client NAME] [--sign-key KEY]\n\n" +
			"Exit codes: 0 the report was written; 1 error; 2 usage.",
		Description: "Renders the evidence as a PDF (the same evidence gives the same bytes), records the PDF\n" +
			"with its SHA-256 in the evidence, and with --sign-key writes FILE.sig.json, an Ed25519\n" +
			"signature over the SHA-256 of the evidence file and the report. The PDF is never written\n" +
			"to stdout (shell redirection can change its bytes). --template DIR overrides the report\n" +
			"texts (DIR/texts.txt, see templates/report/texts.txt) and the logo (DIR/logo.png).\n" +
			"The evidence is verified first (as relaylock verify does): evidence that does not match\n" +
			"its seal is refused (exit 1). --accept-modified renders it anyway, with an \"EVIDENCE\n" +
			"MODIFIED AFTER SEALING\" band naming the changed sections on every page, and then\n" +
			"neither records the PDF in the evidence nor signs: modified evidence is never re-sealed.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "evidence", Usage: "the evidence `FILE` to render"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the PDF to `FILE` (mode 0600)"},
			&cli.StringFlag{Name: "template", Usage: "override report texts and logo from `DIR`"},
			&cli.StringFlag{Name: "logo", Usage: "cover logo, an 8-bit `PNG`"},
			&cli.StringFlag{Name: "client", Usage: "client `NAME` on the cover (default: from the evidence)"},
			&cli.StringFlag{Name: "sign-key", Usage: "sign the evidence and report with the Ed25519 `KEY` (relaylock keygen)"},
			&cli.BoolFlag{Name: "accept-modified", Usage: "render evidence that does not verify, marked as modified on every page (never re-sealed)"},
		},
		Action: func(c *cli.Context) error {
			o := reportOptions{
				Evidence: c.String("evidence"),
				Output:   c.String("output"),
				SignKey:  c.String("sign-key"),
				Accept:   c.Bool("accept-modified"),
				Render: report.Options{
					TemplateDir: c.String("template"),
					LogoPNG:     c.String("logo"),
					Client:      c.String("client"),
				},
			}
			if c.NArg() > 0 {
				return usagef("report: unexpected argument %q (the evidence file goes after --evidence)", c.Args().First())
			}
			if err := o.validate(); err != nil {
				return err
			}
			return runReport(c.Context, e, o)
		},
	}
}

// reportOptions are the report command's settings.
type reportOptions struct {
	Evidence string
	Output   string
	SignKey  string
	// Accept renders evidence that does not verify (--accept-modified).
	Accept bool
	Render report.Options
}

func (o reportOptions) validate() error {
	switch {
	case o.Evidence == "":
		return usagef("report: --evidence FILE is required")
	case o.Output == "":
		return usagef("report: -o FILE is required")
	case o.Output == "-" || o.Output == "/dev/stdout":
		return usagef("report: refusing to write the PDF to stdout; give a file name with -o")
	case o.Accept && o.SignKey != "":
		return usagef("report: --accept-modified cannot be combined with --sign-key: modified evidence is never signed")
	}
	if a, b := filepath.Clean(o.Output), filepath.Clean(o.Evidence); a == b {
		return usagef("report: -o %s would overwrite the evidence file", o.Output)
	}
	return nil
}

// runReport verifies the evidence, renders, records the PDF in the
// evidence, and signs. Evidence that does not verify is refused, or with
// --accept-modified rendered under the modified banner and left as it is.
func runReport(ctx context.Context, e *env, o reportOptions) error {
	b, r, err := evidence.LoadVerified(o.Evidence)
	var mod *evidence.ModifiedError
	switch {
	case errors.As(err, &mod) && o.Accept:
		o.Render.Modified = r.Modified()
		fmt.Fprintf(e.Stderr, "relaylock: warning: %s does not match its seal; rendering it marked %q on every page, and not recording the report in it\n", o.Evidence, report.ModifiedBanner)
		writeMismatches(e.Stderr, r)
		if err := checkReportOutput(o, b); err != nil {
			return err
		}
		if err := report.WriteFile(o.Output, b, o.Render); err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "report:   %s (rendered from MODIFIED evidence: %s)\n", o.Output, strings.Join(o.Render.Modified, ", "))
		return nil
	case errors.As(err, &mod):
		writeMismatches(e.Stderr, r)
		return withCode(exitError, fmt.Errorf("report: %w\nhint: the report is rendered only from evidence that verifies; --accept-modified renders it marked as modified", err))
	case err != nil:
		return err
	}
	if err := checkReportOutput(o, b); err != nil {
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
	if err := report.WriteFile(o.Output, b, o.Render); err != nil {
		return err
	}
	a, err := evidence.RecordArtifact(ctx, o.Evidence, o.Output, "report")
	if err != nil {
		return fmt.Errorf("record report in evidence: %w", err)
	}
	fmt.Fprintf(e.Stdout, "report:   %s (%d bytes)\nsha256:   %s\ndigest:   %s (evidence, as printed in the report)\n", o.Output, a.Size, a.SHA256, a.EvidenceDigest)
	if o.SignKey != "" {
		s, err := evidence.Sign(o.Evidence, o.Output, o.SignKey)
		if err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		fmt.Fprintf(e.Stdout, "signed:   %s\nkey:      %s\n", evidence.SignaturePath(o.Evidence), s.Fingerprint)
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
// not take the place of one rendered from sealed evidence. Anything that
// is not a regular file is refused when written (atomicfile).
func checkReportOutput(o reportOptions, b *evidence.Bundle) error {
	if _, err := os.Stat(o.Output); err != nil {
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
			return usagef("report: -o %s is %s (%s): refusing to replace it; name a new file", o.Output, f.what, f.path)
		}
	}
	for i, bk := range b.Backups {
		if sameRecordedFile(bk.File, o.Evidence, o.Output) {
			return usagef("report: -o %s is backup %s recorded in the evidence (backups[%d]): refusing to replace it; name a new file", o.Output, bk.File, i)
		}
	}
	for i, a := range b.Artifacts {
		if (o.Accept || a.Kind != "report") && sameRecordedFile(a.Path, o.Evidence, o.Output) {
			why := ""
			if o.Accept {
				why = ", rendered from the sealed evidence; a report of modified evidence must not take its place"
			}
			return usagef("report: -o %s is %s %s recorded in the evidence (artifacts[%d]%s): refusing to replace it; name a new file", o.Output, orDash(a.Kind), a.Path, i, why)
		}
	}
	return nil
}

// writeMismatches prints what relaylock verify prints for each problem.
func writeMismatches(w io.Writer, r *evidence.CheckResult) {
	w = printableLines{W: w} // names and values from the evidence file
	for _, l := range r.Notes {
		fmt.Fprintf(w, "note      %s\n", l)
	}
	for _, l := range r.Problems {
		fmt.Fprintf(w, "MISMATCH  %s\n", l)
	}
}
