package cli

import (
	"fmt"
	"io"
)

func check(args []string, stdout, stderr io.Writer) int {
	cfg, _, err := loadConfig("check", args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse check: the configuration cannot be read:")
		printProblems(stderr, err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "gatehouse check: the configuration has problems:")
		printProblems(stderr, err)
		return 2
	}
	fmt.Fprintln(stdout, "gatehouse check: configuration is valid")
	return 0
}
