package logging_test

import (
	"log/slog"
	"os"

	"github.com/gatehouse-bff/gatehouse/internal/logging"
)

func ExampleRedact() {
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	})
	log := slog.New(logging.Redact(h))
	log.Info("token refreshed", "sub", "alice", slog.Group("tokens", "access_token", "eyJhbGciOi...", "expires_in", 300))
	// Output: level=INFO msg="token refreshed" sub=alice tokens.access_token=[redacted] tokens.expires_in=300
}
