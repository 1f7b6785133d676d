// Command relaylock finds open SMTP relays, closes them on Windows mail
// servers over WinRM, and proves it with evidence and a PDF report.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, newEnv())
	stop()
	os.Exit(code)
}
