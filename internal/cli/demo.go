package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/gatehouse-bff/gatehouse/internal/demo"
)

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "gateway address (loopback only)")
	verbose := fs.Bool("v", false, "log every request")
	apps := fs.Int("apps", 1, fmt.Sprintf("how many apps the gateway serves (1 to %d): with 2 or more, path-based apps shop, admin, ... each with its own client, cookie and API", demo.MaxApps))
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *apps < 1 || *apps > demo.MaxApps {
		fmt.Fprintf(stderr, "gatehouse demo: --apps %d: the demo serves 1 to %d apps\n", *apps, demo.MaxApps)
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// The development provider's library logs through the default logger.
	slog.SetDefault(logger)
	if err := demo.Run(ctx, demo.Options{Listen: *listen, Logger: logger, Apps: *apps}, stdout); err != nil {
		fmt.Fprintln(stderr, "gatehouse demo:", err)
		return 1
	}
	return 0
}
