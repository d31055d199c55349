package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

// chunkReader returns data in reads of the given sizes (cycled).
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.sizes) > 0 {
		n = max(c.sizes[c.i%len(c.sizes)], 1)
		c.i++
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// scan reads r through a leak scanner for token, with caller reads of
// readSize bytes, and returns what the caller got and the final error.
func scan(r io.Reader, token string, readSize int) ([]byte, error, bool) {
	hit := false
	s := new(leakScanner)
	s.init(&http.Response{Body: io.NopCloser(r)}, token, &hit)
	var out []byte
	buf := make([]byte, readSize)
	for {
		n, err := s.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return out, err, hit
		}
	}
}

func TestLeakScanner(t *testing.T) {
	const tok = "abcabd"
	tests := []struct {
		name  string
		data  string
		sizes []int
		leak  bool
	}{
		{"no token", "hello world abcab abcabc", nil, false},
		{"token alone", tok, nil, true},
		{"token at start", tok + "xyz", []int{2, 3}, true},
		{"token at end", "xyz" + tok, []int{4}, true},
		{"overlapping prefix", "abcabcabd", []int{1}, true},
		{"split everywhere", "zz" + tok + "zz", []int{1, 2, 3, 5, 8}, true},
		{"prefix at eof", "xxabcab", []int{3}, false},
		{"empty", "", nil, false},
	}
	for _, tt := range tests {
		for _, readSize := range []int{1, 7, len(tok) + minDirectRead} {
			t.Run(tt.name, func(t *testing.T) {
				out, err, hit := scan(&chunkReader{data: []byte(tt.data), sizes: tt.sizes}, tok, readSize)
				if tt.leak {
					if !errors.Is(err, errLeak) || !hit {
						t.Fatalf("read size %d: err %v hit %v, want leak", readSize, err, hit)
					}
					if bytes.Contains(out, []byte(tok)) {
						t.Fatalf("read size %d: output %q contains token", readSize, out)
					}
					return
				}
				if err != nil || hit || string(out) != tt.data {
					t.Fatalf("read size %d: got %q, %v, hit %v; want %q", readSize, out, err, hit, tt.data)
				}
			})
		}
	}
}

func TestLeakScannerReleasesNonPrefixTails(t *testing.T) {
	// An event-stream chunk ends in "\n", which cannot start a token: the
	// whole chunk must be released at once, without waiting for more.
	pr, pw := io.Pipe()
	var hit bool
	s := new(leakScanner)
	s.init(&http.Response{Body: pr}, testToken, &hit)
	go pw.Write([]byte("data: 1\n\n"))
	buf := make([]byte, 32*1024)
	n, err := s.Read(buf)
	if err != nil || string(buf[:n]) != "data: 1\n\n" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	pw.Close()
}

// TestLeakScannerAllocatesNothingForACleanBody: a body that does not end
// in a possible start of the token is scanned without an allocation.
func TestLeakScannerAllocatesNothingForACleanBody(t *testing.T) {
	body := []byte(strings.Repeat(`{"id":1234,"state":"paid"},`, 40))
	buf := make([]byte, 32*1024)
	var hit bool
	var s leakScanner
	r := bytes.NewReader(body)
	res := &http.Response{Body: io.NopCloser(r)}
	n := testing.AllocsPerRun(100, func() {
		r.Reset(body)
		s.init(res, testToken, &hit)
		for {
			if _, err := s.Read(buf); err != nil {
				break
			}
		}
	})
	if n != 0 || hit {
		t.Errorf("scanning allocates %v times (hit %v), want 0", n, hit)
	}
}

func TestLeakScannerPropagatesErrors(t *testing.T) {
	boom := errors.New("boom")
	out, err, hit := scan(iotest.DataErrReader(io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom))), "xyz", 64)
	if !errors.Is(err, boom) || hit || string(out) != "abc" {
		t.Fatalf("got %q, %v, %v", out, err, hit)
	}
}

func TestHeldSuffix(t *testing.T) {
	for _, tt := range []struct {
		data, token string
		want        int
	}{
		{"xxab", "abc", 2},
		{"xxa", "abc", 1},
		{"xxabc", "abcd", 3},
		{"abab", "abac", 2},
		{"aaaa", "aaab", 3},
		{"xyz", "abc", 0},
		{"", "abc", 0},
		{"a", "a", 0},
	} {
		if got := heldSuffix([]byte(tt.data), tt.token); got != tt.want {
			t.Errorf("heldSuffix(%q, %q) = %d, want %d", tt.data, tt.token, got, tt.want)
		}
	}
}

func FuzzLeakScanner(f *testing.F) {
	f.Add([]byte("some response body"), []byte("tok3n"), uint16(5), []byte{1, 2, 3}, uint16(7))
	f.Add([]byte("aaaaaaaaaaaaaaaa"), []byte("aaab"), uint16(3), []byte{1}, uint16(1))
	f.Add([]byte{}, []byte("x"), uint16(0), []byte{}, uint16(4096))
	f.Fuzz(func(t *testing.T, data, token []byte, pos uint16, sizes []byte, readSize uint16) {
		if len(token) == 0 || len(token) > 512 || len(data) > 1<<16 {
			return
		}
		sz := make([]int, len(sizes))
		for i, s := range sizes {
			sz[i] = int(s)
		}
		rs := int(readSize%8192) + 1
		if got, want := containsToken(data, string(token)), bytes.Contains(data, token); got != want {
			t.Fatalf("containsToken = %v, bytes.Contains = %v", got, want)
		}

		// Without a planted token the output equals the input, unless the
		// input already holds the token.
		out, err, hit := scan(&chunkReader{data: data, sizes: sz}, string(token), rs)
		if bytes.Contains(data, token) {
			if !hit || !errors.Is(err, errLeak) {
				t.Fatalf("token in input missed: err %v", err)
			}
		} else if err != nil || hit || !bytes.Equal(out, data) {
			t.Fatalf("clean input changed: got %d bytes, err %v, hit %v; want %d bytes", len(out), err, hit, len(data))
		}

		// With a planted token, it is always found and never released.
		p := int(pos) % (len(data) + 1)
		planted := append(append(append([]byte{}, data[:p]...), token...), data[p:]...)
		out, err, hit = scan(&chunkReader{data: planted, sizes: sz}, string(token), rs)
		if !hit || !errors.Is(err, errLeak) {
			t.Fatalf("planted token at %d missed: err %v", p, err)
		}
		if bytes.Contains(out, token) {
			t.Fatalf("output contains the token")
		}
	})
}
