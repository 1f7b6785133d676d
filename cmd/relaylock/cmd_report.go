package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
	"github.com/relaylock/relaylock/report"
)

func reportCommand(e *env, run func(context.Context, *env, engagement.ReportOptions) error) *cli.Command {
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
			"neither records the PDF in the evidence nor signs: modified evidence is never re-sealed.\n" +
			"The output file is never replaced unless it is this evidence's own recorded report.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "evidence", Usage: "the evidence `FILE` to render"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the PDF to `FILE` (mode 0600)"},
			&cli.StringFlag{Name: "template", Usage: "override report texts and logo from `DIR`"},
			&cli.StringFlag{Name: "logo", Usage: "cover logo, an 8-bit `PNG`"},
			&cli.StringFlag{Name: "client", Usage: "client `NAME` for evidence that names none (recorded with the report; a different name than the evidence's is refused)"},
			&cli.StringFlag{Name: "sign-key", Usage: "sign the evidence and report with the Ed25519 `KEY` (relaylock keygen)"},
			&cli.BoolFlag{Name: "accept-modified", Usage: "render evidence that does not verify, marked as modified on every page (never re-sealed)"},
		},
		Action: func(c *cli.Context) error {
			o := engagement.ReportOptions{
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
			return run(c.Context, e, o)
		},
	}
}
