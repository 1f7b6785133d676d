package main

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"

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
			"texts (DIR/texts.txt, see templates/report/texts.txt) and the logo (DIR/logo.png).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "evidence", Usage: "the evidence `FILE` to render"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the PDF to `FILE` (mode 0600)"},
			&cli.StringFlag{Name: "template", Usage: "override report texts and logo from `DIR`"},
			&cli.StringFlag{Name: "logo", Usage: "cover logo, an 8-bit `PNG`"},
			&cli.StringFlag{Name: "client", Usage: "client `NAME` on the cover (default: from the evidence)"},
			&cli.StringFlag{Name: "sign-key", Usage: "sign the evidence and report with the Ed25519 `KEY` (relaylock keygen)"},
		},
		Action: func(c *cli.Context) error {
			o := reportOptions{
				Evidence: c.String("evidence"),
				Output:   c.String("output"),
				SignKey:  c.String("sign-key"),
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
			return runReport(e, o)
		},
	}
}

// reportOptions are the report command's settings.
type reportOptions struct {
	Evidence string
	Output   string
	SignKey  string
	Render   report.Options
}

func (o reportOptions) validate() error {
	switch {
	case o.Evidence == "":
		return usagef("report: --evidence FILE is required")
	case o.Output == "":
		return usagef("report: -o FILE is required")
	case o.Output == "-" || o.Output == "/dev/stdout":
		return usagef("report: refusing to write the PDF to stdout; give a file name with -o")
	}
	if a, b := filepath.Clean(o.Output), filepath.Clean(o.Evidence); a == b {
		return usagef("report: -o %s would overwrite the evidence file", o.Output)
	}
	return nil
}

// runReport renders, records the PDF in the evidence, and signs.
func runReport(e *env, o reportOptions) error {
	b, err := evidence.Load(o.Evidence)
	if err != nil {
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
	a, err := evidence.RecordArtifact(o.Evidence, o.Output, "report")
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
