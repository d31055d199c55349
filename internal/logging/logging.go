package logging

import (
	"fmt"
	"io"
	"log/slog"
)

// New returns a logger writing to w. format is "text" (the default when
// empty) or "json"; level is "debug", "info" (the default when empty),
// "warn" or "error", in any case, optionally with an offset such as
// "info+2" as slog.Level accepts. The logger redacts credentials (see
// Redact) and adds the request id from the context (see WithRequestID).
func New(format, level string, w io.Writer) (*slog.Logger, error) {
	lvl := slog.LevelInfo
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("logging: invalid level %q: %w", level, err)
		}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch format {
	case "", "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("logging: unknown format %q (want text or json)", format)
	}
	return slog.New(WithRequestID(Redact(h))), nil
}
