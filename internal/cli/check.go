package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/doctor"
)

// check validates the configuration, then runs the deployment doctor
// against the provider and prints its checklist. Exit code: 0 when every
// check passed, 1 with warnings only, 2 with any failure.
func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "gatehouse check: --config FILE is required")
		return 2
	}
	what := "the configuration cannot be read"
	cfg, err := config.Load(*path)
	if err == nil {
		what = "the configuration has problems"
		err = cfg.Validate()
	}
	if err != nil {
		if *asJSON {
			return printJSON(stdout, stderr, doctor.NewReport(doctor.ConfigProblem(what, err)))
		}
		fmt.Fprintf(stderr, "gatehouse check: %s:\n", what)
		printProblems(stderr, err)
		return 2
	}

	report := doctor.Run(context.Background(), cfg, doctor.Options{})
	if *asJSON {
		return printJSON(stdout, stderr, report)
	}
	fmt.Fprintf(stdout, "gatehouse check: configuration is valid; checking the deployment against %s\n\n", strings.Join(issuers(cfg), ", "))
	printReport(stdout, report)
	return report.ExitCode()
}

func printJSON(stdout, stderr io.Writer, r doctor.Report) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		fmt.Fprintln(stderr, "gatehouse check:", err)
		return 2
	}
	return r.ExitCode()
}

// printReport writes one block per check: status and message, then the fix
// indented under it.
func printReport(w io.Writer, r doctor.Report) {
	for _, c := range r.Checks {
		msg := strings.ReplaceAll(c.Message, "\n", "\n       ")
		fmt.Fprintf(w, "%-4s  %-24s %s\n", c.Status, c.ID, msg)
		if c.Fix != "" && c.Status != doctor.Pass {
			fmt.Fprintf(w, "      %-24s fix: %s\n", "", c.Fix)
		}
	}
	s := r.Summary
	verdict := "ready"
	switch r.Worst() {
	case doctor.Fail:
		verdict = "not ready: fix the FAIL lines"
	case doctor.Warn:
		verdict = "usable, with warnings"
	}
	fmt.Fprintf(w, "\n%d passed, %d info, %d warnings, %d failed: %s\n", s.Pass, s.Info, s.Warn, s.Fail, verdict)
}

// issuers returns the distinct issuers of the apps cfg serves.
func issuers(cfg *config.Config) []string {
	var out []string
	add := func(iss string) {
		if !slices.Contains(out, iss) {
			out = append(out, iss)
		}
	}
	if cfg.ServesTopLevel() {
		add(cfg.OIDC.Issuer)
	}
	for _, a := range cfg.Apps {
		add(a.Resolve(cfg).OIDC.Issuer)
	}
	return out
}
