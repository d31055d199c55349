package chart

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The repository's Dockerfile is linted here because no container builder
// runs in CI. The parser below reads the instruction keywords the file
// uses (line continuations, comments, JSON and shell forms); it is a test's
// parser, and refuses what it does not understand (heredocs, a changed
// escape character) rather than guess.

// instruction is one Dockerfile instruction.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, ...
	args string // the rest, continuations joined
}

// stage is one FROM and the instructions under it.
type stage struct {
	from  instruction
	image string
	name  string
	body  []instruction
}

func parseDockerfile(text string) ([]stage, error) {
	var (
		stages []stage
		cur    *instruction
		start  int
	)
	lines := strings.Split(text, "\n")
	var insts []instruction
	for i, raw := range lines {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") {
			if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(line, " ", "")), "#escape=") {
				return nil, fmt.Errorf("line %d: the escape directive is not supported by this linter", i+1)
			}
			continue // a comment, also inside a continued instruction
		}
		if cur == nil {
			if line == "" {
				continue
			}
			kw, rest, _ := strings.Cut(line, " ")
			cur, start = &instruction{line: i + 1, cmd: strings.ToUpper(kw)}, i+1
			line = strings.TrimSpace(rest)
		}
		if strings.Contains(line, "<<") && (cur.cmd == "RUN" || cur.cmd == "COPY") && regexp.MustCompile(`<<-?["']?[A-Za-z]`).MatchString(line) {
			return nil, fmt.Errorf("line %d: heredocs are not supported by this linter", i+1)
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.args += cont + " "
			continue
		}
		cur.args = strings.Join(strings.Fields(cur.args+line), " ")
		insts = append(insts, *cur)
		cur = nil
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: the file ends inside a continued instruction", start)
	}
	for _, in := range insts {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:] // --platform=...
			}
			if len(f) != 1 && !(len(f) == 3 && strings.EqualFold(f[1], "AS")) {
				return nil, fmt.Errorf("line %d: FROM %s", in.line, in.args)
			}
			s := stage{from: in, image: f[0]}
			if len(f) == 3 {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				return nil, fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	return stages, nil
}

// execForm decodes a JSON-array argument (ENTRYPOINT ["/x"]), or fails.
func execForm(in instruction) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		return nil, fmt.Errorf("line %d: %s %s is not in exec (JSON array) form: with no shell in the image, the shell form cannot run", in.line, in.cmd, in.args)
	}
	return v, nil
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func (s stage) last(cmd string) (instruction, bool) {
	all := s.all(cmd)
	if len(all) == 0 {
		return instruction{}, false
	}
	return all[len(all)-1], true
}

// shellless are final-stage bases without a shell: scratch, and the
// distroless static images (not their :debug variants, which have busybox).
var shellless = regexp.MustCompile(`^(scratch|gcr\.io/distroless/static(-debian[0-9]+)?(:[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?)$`)

// dockerfileRules is the contract of the image: lintDockerfile returns
// every rule the file breaks.
func lintDockerfile(text string) []error {
	stages, err := parseDockerfile(text)
	if err != nil {
		return []error{err}
	}
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if len(stages) < 2 {
		bad("want a multi-stage build (a build stage and a runtime stage); got %d stage(s)", len(stages))
		return problems
	}
	final := stages[len(stages)-1]
	if !shellless.MatchString(final.image) || strings.Contains(final.image, "debug") {
		bad("line %d: the final stage is FROM %s; want scratch or gcr.io/distroless/static (no shell)", final.from.line, final.image)
	}
	for _, cmd := range []string{"RUN", "SHELL", "HEALTHCHECK"} {
		for _, in := range final.all(cmd) {
			bad("line %d: %s in the final stage, which has no shell", in.line, cmd)
		}
	}

	// USER: numeric uid:gid, not root.
	if u, ok := final.last("USER"); !ok {
		bad("the final stage has no USER: it would run as root")
	} else {
		uid, gid, _ := strings.Cut(u.args, ":")
		n, err1 := strconv.Atoi(uid)
		g, err2 := strconv.Atoi(gid)
		switch {
		case err1 != nil || (gid != "" && err2 != nil):
			bad("line %d: USER %s is not numeric: runAsNonRoot can only verify a numeric user", u.line, u.args)
		case n == 0 || (gid != "" && g == 0):
			bad("line %d: USER %s is root", u.line, u.args)
		case gid == "":
			bad("line %d: USER %s has no group; give uid:gid", u.line, u.args)
		}
	}
	if s, ok := final.last("STOPSIGNAL"); !ok || s.args != "SIGTERM" {
		bad("the final stage must say STOPSIGNAL SIGTERM, the signal gatehouse drains on; got %q", s.args)
	}
	if e, ok := final.last("ENTRYPOINT"); !ok {
		bad("the final stage has no ENTRYPOINT")
	} else if v, err := execForm(e); err != nil {
		problems = append(problems, err)
	} else if !slices.Equal(v, []string{"/gatehouse"}) {
		bad("line %d: ENTRYPOINT %q; want [\"/gatehouse\"]", e.line, v)
	}
	if c, ok := final.last("CMD"); !ok {
		bad("the final stage has no CMD")
	} else if v, err := execForm(c); err != nil {
		problems = append(problems, err)
	} else if len(v) != 3 || v[0] != "serve" || v[1] != "--config" || !strings.HasPrefix(v[2], "/") {
		bad("line %d: CMD %q; want [\"serve\", \"--config\", \"/absolute/path\"]", c.line, v)
	}
	copied := false
	for _, in := range final.all("COPY") {
		if f := strings.Fields(in.args); len(f) > 0 && f[len(f)-1] == "/gatehouse" && strings.Contains(in.args, "--from=") {
			copied = true
		}
	}
	if !copied {
		bad("the final stage does not COPY --from a build stage to /gatehouse")
	}
	if v, ok := final.last("VOLUME"); !ok {
		bad("the final stage declares no VOLUME for its state")
	} else if paths, err := execForm(v); err != nil {
		problems = append(problems, err)
	} else if !slices.Contains(paths, "/var/lib/gatehouse") {
		bad("line %d: VOLUME %q; want /var/lib/gatehouse", v.line, paths)
	}

	// The build: a static binary of ./cmd/gatehouse.
	built := false
	for _, s := range stages[:len(stages)-1] {
		cgoOff := false
		for _, in := range s.body {
			if in.cmd == "ENV" && envSets(in.args, "CGO_ENABLED", "0") {
				cgoOff = true
			}
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				if !strings.Contains(in.args, "./cmd/gatehouse") {
					continue
				}
				built = true
				if !cgoOff && !strings.Contains(in.args, "CGO_ENABLED=0") {
					bad("line %d: go build without CGO_ENABLED=0: the binary would need libc, which the final stage lacks", in.line)
				}
			}
		}
	}
	if !built {
		bad("no build stage runs go build ./cmd/gatehouse")
	}
	return problems
}

// envSets reports whether the arguments of an ENV instruction set name to
// value, in the key=value form or the legacy "ENV key value" form.
func envSets(args, name, value string) bool {
	if k, v, ok := strings.Cut(args, " "); ok && !strings.Contains(k, "=") {
		return k == name && strings.TrimSpace(v) == value
	}
	for _, kv := range strings.Fields(args) {
		if k, v, _ := strings.Cut(kv, "="); k == name && strings.Trim(v, `"'`) == value {
			return true
		}
	}
	return false
}

func TestDockerfileFollowsTheRules(t *testing.T) {
	b, err := os.ReadFile("../../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if problems := lintDockerfile(string(b)); len(problems) > 0 {
		t.Errorf("Dockerfile:\n%v", errors.Join(problems...))
	}
}

// TestDockerfileMatchesTheChart checks that the image and the chart agree:
// the user, the ports, the command and the state directory.
func TestDockerfileMatchesTheChart(t *testing.T) {
	b, err := os.ReadFile("../../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages, err := parseDockerfile(string(b))
	if err != nil {
		t.Fatal(err)
	}
	final := stages[len(stages)-1]
	o := render(t, "")
	c := o.container(t)
	user, _ := final.last("USER")
	sc := c.SecurityContext
	if want := fmt.Sprintf("%d:%d", *sc.RunAsUser, *sc.RunAsGroup); user.args != want {
		t.Errorf("Dockerfile USER %s; the chart runs as %s", user.args, want)
	}
	cmd, _ := final.last("CMD")
	if v, _ := execForm(cmd); !slices.Equal(v, c.Args) {
		t.Errorf("Dockerfile CMD %q; the chart runs %q", v, c.Args)
	}
	expose, _ := final.last("EXPOSE")
	for _, name := range []string{"http", "admin"} {
		if p := containerPort(c, name); !slices.Contains(strings.Fields(expose.args), strconv.Itoa(int(p))) {
			t.Errorf("Dockerfile EXPOSE %s lacks the chart's %s port %d", expose.args, name, p)
		}
	}
	vol, _ := final.last("VOLUME")
	if v, _ := execForm(vol); !slices.Contains(v, stateDir(t, o)) {
		t.Errorf("Dockerfile VOLUME %q; the chart mounts its state volume at %s", v, stateDir(t, o))
	}
}

// TestDockerfileLintCatchesEachRule feeds the linter files that each break
// one rule, so that a lint that passes is a lint that looked.
func TestDockerfileLintCatchesEachRule(t *testing.T) {
	good, err := os.ReadFile("../../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"single stage", "FROM scratch\n", "", "want a multi-stage build"},
		{"shell in the final stage", "FROM scratch", "FROM gcr.io/distroless/static-debian12:debug", "no shell"},
		{"alpine final stage", "FROM scratch", "FROM alpine:3.20", "no shell"},
		{"root user", "USER 65532:65532", "USER 0:0", "is root"},
		{"named user", "USER 65532:65532", "USER nonroot", "not numeric"},
		{"no user", "USER 65532:65532\n", "", "no USER"},
		{"other stop signal", "STOPSIGNAL SIGTERM", "STOPSIGNAL SIGINT", "STOPSIGNAL SIGTERM"},
		{"cgo on", "ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false", "ENV GOFLAGS=-buildvcs=false", "CGO_ENABLED=0"},
		{"shell-form entrypoint", `ENTRYPOINT ["/gatehouse"]`, "ENTRYPOINT /gatehouse", "exec (JSON array) form"},
		{"run in final stage", "USER 65532:65532", "RUN mkdir /x\nUSER 65532:65532", "RUN in the final stage"},
		{"no volume", `VOLUME ["/var/lib/gatehouse"]`, "", "no VOLUME"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := string(good)
			if !strings.Contains(text, tc.old) {
				t.Fatalf("the Dockerfile no longer contains %q; update this case", tc.old)
			}
			text = strings.Replace(text, tc.old, tc.new, 1)
			problems := lintDockerfile(text)
			if !strings.Contains(fmt.Sprint(problems), tc.want) {
				t.Errorf("lint = %v; want a problem mentioning %q", problems, tc.want)
			}
		})
	}
}
