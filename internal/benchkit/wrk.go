package benchkit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// WrkResult is what one wrk run reported.
type WrkResult struct {
	RPS      float64
	P50, P99 time.Duration
	Errors   int64 // socket errors and non-2xx answers
	Requests int64
}

// HaveWrk reports whether wrk is installed.
func HaveWrk() bool {
	_, err := exec.LookPath("wrk")
	return err == nil
}

// RunWrk runs wrk against url with the given headers, threads and
// connections for d, and parses its latency distribution.
func RunWrk(ctx context.Context, url string, headers map[string]string, threads, conns int, d time.Duration) (*WrkResult, error) {
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second)), "--latency", "--timeout", "10s"}
	for k, v := range headers {
		args = append(args, "-H", k+": "+v)
	}
	args = append(args, url)
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "wrk", args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("benchkit: wrk: %w: %s", err, stderr.String())
	}
	return parseWrk(out.String())
}

func parseWrk(s string) (*WrkResult, error) {
	r := &WrkResult{}
	sc := bufio.NewScanner(strings.NewReader(s))
	var haveRPS bool
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return nil, fmt.Errorf("benchkit: wrk: %q: %w", sc.Text(), err)
			}
			r.RPS, haveRPS = v, true
		case len(f) == 2 && f[0] == "50%":
			r.P50, _ = parseWrkDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			r.P99, _ = parseWrkDuration(f[1])
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			r.Requests, _ = strconv.ParseInt(f[0], 10, 64)
		case len(f) >= 2 && f[0] == "Non-2xx":
			n, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
			r.Errors += n
		case len(f) >= 3 && f[0] == "Socket" && f[1] == "errors:":
			for i := 2; i+1 < len(f); i += 2 {
				n, _ := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				r.Errors += n
			}
		}
	}
	if !haveRPS {
		return nil, errors.New("benchkit: wrk printed no Requests/sec line")
	}
	return r, nil
}

// parseWrkDuration reads wrk's "812.00us", "1.23ms", "2.00s".
func parseWrkDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, err
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("benchkit: wrk duration %q", s)
}
