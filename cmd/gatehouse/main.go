// Command gatehouse runs the Gatehouse BFF security gateway.
//
//	gatehouse serve --config FILE    run the gateway
//	gatehouse check --config FILE    validate a configuration
//	gatehouse demo                   run a self-contained local demo
//	gatehouse keys generate [ID]     print a new session key
//	gatehouse version                print the version
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/gatehouse-bff/gatehouse/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
