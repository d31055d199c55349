// Package cli implements the gatehouse command's subcommands, so that the
// main package only wires signals and exit codes.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-bff/gatehouse"
	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/admin"
	"github.com/gatehouse-bff/gatehouse/internal/logging"
	"github.com/gatehouse-bff/gatehouse/internal/metrics"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/server"
	"github.com/gatehouse-bff/gatehouse/internal/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Version is the gatehouse version, set at build time with
// -ldflags "-X github.com/gatehouse-bff/gatehouse/internal/cli.Version=v1.2.3".
var Version = ""

// Run runs the subcommand in args and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "demo":
		return demoCmd(ctx, args[1:], stdout, stderr)
	case "keys":
		return keys(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "gatehouse", version())
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "gatehouse: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  gatehouse serve --config FILE    run the gateway
  gatehouse check --config FILE    check a configuration and the deployment (provider, clock,
                                   store, TLS); exit 0 ok, 1 warnings, 2 failures; --json
  gatehouse demo                   run a local demo (gateway, dev provider, API, SPA);
                                   --apps 2 serves two apps to show they are isolated
  gatehouse keys generate [ID]     print a new session sealing key
  gatehouse version                print the version
`)
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func loadConfig(name string, args []string, stderr io.Writer) (*config.Config, *flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return nil, fs, err
	}
	if *path == "" {
		return nil, fs, errors.New("--config FILE is required")
	}
	cfg, err := config.Load(*path)
	return cfg, fs, err
}

// printProblems writes each joined error on its own line.
func printProblems(w io.Writer, err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			printProblems(w, e)
		}
		return
	}
	fmt.Fprintf(w, "  - %v\n", err)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, fs, err := loadConfig("serve", args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse serve: the configuration cannot be read:")
		printProblems(stderr, err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "gatehouse serve: the configuration has problems:")
		printProblems(stderr, err)
		return 2
	}
	logger, err := logging.New(cfg.Log.Format, cfg.Log.Level, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse serve:", err)
		return 2
	}
	useRedisLogger(logger)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	tr, err := tracing.New(ctx, tracing.Options{
		OTLPEndpoint: cfg.Tracing.OTLPEndpoint,
		ServiceName:  cfg.Tracing.ServiceName,
		SampleRatio:  cfg.Tracing.SampleRatio,
		Version:      version(),
	})
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse serve:", err)
		return 2
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tr.Shutdown(sctx)
	}()
	gwOpts := []gatehouse.Option{gatehouse.WithLogger(logger), gatehouse.WithMetrics(reg)}
	if tr.Enabled() {
		gwOpts = append(gwOpts, gatehouse.WithTracerProvider(tr.TracerProvider()))
	}
	gw, err := gatehouse.New(cfg, gwOpts...)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse serve:", err)
		return 1
	}
	defer gw.Close()
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse serve:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	opts := server.Options{
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
		TLSCert:           cfg.Server.TLSCert,
		TLSKey:            cfg.Server.TLSKey,
		Drain:             cfg.Server.ShutdownTimeout,
		Logger:            logger,
	}
	adminOpts := opts
	adminOpts.TLSCert, adminOpts.TLSKey = "", "" // the admin listener is plain, on loopback by default
	// SIGHUP and POST /admin/reload re-read the configuration file.
	path := fs.Lookup("config").Value.String()
	reload := func(ctx context.Context) error {
		err := gw.Reload(func() (*config.Config, error) { return config.Load(path) })
		if err != nil {
			logger.WarnContext(ctx, "configuration reload refused", "err", err)
		} else {
			logger.InfoContext(ctx, "configuration reloaded", "config", path)
		}
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload(ctx)
			}
		}
	}()
	adminAddr := "off"
	if cfg.Admin.Listen != "off" {
		if err := admin.ListenCheck(cfg.Admin.Listen, cfg.Admin.Token); err != nil {
			fmt.Fprintln(stderr, "gatehouse serve:", err)
			return 2
		}
		ah, err := gw.AdminHandler(cfg.Admin.Token)
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse serve:", err)
			return 1
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler(reg))
		mux.Handle(admin.ReloadPath, admin.NewReloadHandler(cfg.Admin.Token, reload, logger))
		mux.Handle("/", ah)
		aln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse serve: admin listener:", err)
			return 1
		}
		if err := admin.BoundCheck(aln, cfg.Admin.Token); err != nil {
			aln.Close()
			fmt.Fprintln(stderr, "gatehouse serve:", err)
			return 2
		}
		adminAddr = aln.Addr().String()
		go func() { errc <- server.Run(ctx, aln, mux, adminOpts) }()
	}
	banner(stdout, cfg, ln.Addr().String(), adminAddr)
	go func() { errc <- server.Run(ctx, ln, tr.Handler("gatehouse", logging.AccessLog(logger, gw)), opts) }()
	// Either server ending (a signal, or a failure) stops both.
	err = <-errc
	cancel()
	if cfg.Admin.Listen != "off" {
		if err2 := <-errc; err == nil {
			err = err2
		}
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "gatehouse serve:", err)
		return 1
	}
	return 0
}

func banner(w io.Writer, cfg *config.Config, addr, adminAddr string) {
	fmt.Fprintf(w, "gatehouse %s\n  listening  %s\n  public     %s\n  admin      %s\n  provider   %s\n  store      %s\n", version(), addr, cfg.Server.PublicURL, adminAddr, cfg.OIDC.Issuer, cfg.Session.Store)
	for _, r := range cfg.Routes {
		fmt.Fprintf(w, "  route      %s -> %s (token: %s)\n", r.Prefix, r.Upstream, r.Token)
	}
	if strings.HasPrefix(cfg.Server.PublicURL, "http://") || cfg.Session.Store == config.StoreMemory {
		fmt.Fprintln(w, "  note: plain-http loopback URL or memory store: fit for development only")
	}
}

func keys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "generate" {
		fmt.Fprintln(stderr, "usage: gatehouse keys generate [ID]")
		return 2
	}
	id := time.Now().UTC().Format("k20060102")
	if len(args) > 1 {
		id = args[1]
	}
	k, err := seal.GenerateKey(id)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse keys:", err)
		return 2
	}
	fmt.Fprintln(stdout, k)
	return 0
}
