package logging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
)

const secret = "s3cr3t-T0KEN-value"

func TestNewFormatsAndLevels(t *testing.T) {
	tests := []struct {
		format, level string
		wantJSON      bool
		debug, info   bool
	}{
		{"", "", false, false, true},
		{"text", "debug", false, true, true},
		{"json", "INFO", true, false, true},
		{"json", "warn", true, false, false},
		{"text", "error", false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.format+"/"+tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := New(tt.format, tt.level, &buf)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if got := l.Enabled(ctx, slog.LevelDebug); got != tt.debug {
				t.Errorf("debug enabled = %v, want %v", got, tt.debug)
			}
			if got := l.Enabled(ctx, slog.LevelInfo); got != tt.info {
				t.Errorf("info enabled = %v, want %v", got, tt.info)
			}
			l.Error("hello", "access_token", secret)
			out := buf.String()
			if strings.Contains(out, secret) {
				t.Errorf("token in output: %s", out)
			}
			if isJSON := json.Valid(bytes.TrimSpace(buf.Bytes())); isJSON != tt.wantJSON {
				t.Errorf("json output = %v, want %v: %s", isJSON, tt.wantJSON, out)
			}
		})
	}
}

func TestNewRejectsUnknownSettings(t *testing.T) {
	for _, tt := range []struct{ format, level string }{{"xml", "info"}, {"text", "loud"}} {
		if _, err := New(tt.format, tt.level, io.Discard); err == nil || !strings.HasPrefix(err.Error(), "logging: ") {
			t.Errorf("New(%q, %q) error = %v, want a logging: error", tt.format, tt.level, err)
		}
	}
}

type tokenValuer struct{}

func (tokenValuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("refresh_token", secret), slog.String("kind", "visible"))
}

func TestRedactNeverWritesSensitiveValues(t *testing.T) {
	keys := []string{
		"access_token", "refresh_token", "id_token", "token", "client_secret", "secret", "password",
		"authorization", "cookie", "set-cookie", "code_verifier", "logout_token",
		"Access_Token", "AUTHORIZATION", "Set-Cookie", "set_cookie", "ID-TOKEN",
	}
	type logFn func(l *slog.Logger, key string)
	shapes := map[string]logFn{
		"top level": func(l *slog.Logger, key string) { l.Info("m", key, secret, "kind", "visible") },
		"attrs": func(l *slog.Logger, key string) {
			l.LogAttrs(context.Background(), slog.LevelInfo, "m", slog.String(key, secret), slog.String("kind", "visible"))
		},
		"any value": func(l *slog.Logger, key string) { l.Info("m", slog.Any(key, []byte(secret)), "kind", "visible") },
		"group": func(l *slog.Logger, key string) {
			l.Info("m", slog.Group("g", slog.Group("h", key, secret)), "kind", "visible")
		},
		"with": func(l *slog.Logger, key string) { l.With(key, secret).Info("m", "kind", "visible") },
		"with group": func(l *slog.Logger, key string) {
			l.WithGroup("req").With(slog.Group("inner", key, secret)).Info("m", "kind", "visible")
		},
		"group key": func(l *slog.Logger, key string) { l.Info("m", slog.Group(key, "nested", secret), "kind", "visible") },
		"valuer":    func(l *slog.Logger, key string) { l.Info("m", key, tokenValuer{}, "kind", "visible") },
	}
	for name, fn := range shapes {
		for _, key := range keys {
			for _, format := range []string{"text", "json"} {
				var buf bytes.Buffer
				l, err := New(format, "debug", &buf)
				if err != nil {
					t.Fatal(err)
				}
				fn(l, key)
				out := buf.String()
				if strings.Contains(out, secret) {
					t.Errorf("%s %s %q: secret in output: %s", name, format, key, out)
				}
				if !strings.Contains(out, Redacted) {
					t.Errorf("%s %s %q: no %s marker: %s", name, format, key, Redacted, out)
				}
				if !strings.Contains(out, "visible") {
					t.Errorf("%s %s %q: other attribute lost: %s", name, format, key, out)
				}
			}
		}
	}
}

func TestRedactKeepsOtherAttributes(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(Redact(slog.NewJSONHandler(&buf, nil)))
	l.Info("m", "user", "alice", "token_type", "Bearer", slog.Group("g", "n", 3), "valuer", tokenValuer{})
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["user"] != "alice" || got["token_type"] != "Bearer" {
		t.Errorf("plain attributes changed: %v", got)
	}
	if g, _ := got["g"].(map[string]any); g["n"] != 3.0 {
		t.Errorf("group changed: %v", got["g"])
	}
	v, _ := got["valuer"].(map[string]any)
	if v["refresh_token"] != Redacted || v["kind"] != "visible" {
		t.Errorf("resolved valuer = %v", v)
	}
}

func TestRedactHeaders(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(Redact(slog.NewJSONHandler(&buf, nil)))
	h := http.Header{}
	h.Set("Authorization", "Bearer "+secret)
	h.Set("Cookie", "__Host-gh="+secret)
	h.Set("Set-Cookie", "__Host-gh="+secret)
	h.Set("Accept", "application/json")
	l.Info("m", "headers", h)
	out := buf.String()
	if strings.Contains(out, secret) || !strings.Contains(out, "application/json") {
		t.Errorf("header redaction wrong: %s", out)
	}
	if h.Get("Authorization") != "Bearer "+secret {
		t.Error("the logged header was modified")
	}
}

func TestRedactWrapsOnce(t *testing.T) {
	h := Redact(slog.DiscardHandler)
	if Redact(h) != h {
		t.Error("Redact wrapped a redacting handler again")
	}
}

func decodeLine(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	return got
}

func TestAccessLogLine(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		ctxID      string
		wantStatus float64
		wantBytes  float64
		wantLevel  string
		wantID     string
	}{
		{
			name: "status and body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusTeapot)
				io.WriteString(w, "hello")
			},
			ctxID:      "rid-ctx",
			wantStatus: 418, wantBytes: 5, wantLevel: "INFO", wantID: "rid-ctx",
		},
		{
			name: "implicit 200, id from response header",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Request-Id", "rid-hdr")
				w.Write([]byte("ab"))
			},
			wantStatus: 200, wantBytes: 2, wantLevel: "INFO", wantID: "rid-hdr",
		},
		{
			name:       "nothing written",
			handler:    func(w http.ResponseWriter, r *http.Request) {},
			wantStatus: 200, wantBytes: 0, wantLevel: "INFO",
		},
		{
			name: "early hints then error",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusEarlyHints)
				w.WriteHeader(http.StatusBadGateway)
			},
			wantStatus: 502, wantBytes: 0, wantLevel: "WARN",
		},
		{
			name: "read from",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.Copy(w, strings.NewReader(strings.Repeat("x", 1000)))
			},
			wantStatus: 200, wantBytes: 1000, wantLevel: "INFO",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, _ := New("json", "info", &buf)
			r := httptest.NewRequest(http.MethodGet, "/bff/callback?code="+secret+"&state=abc", nil)
			if tt.ctxID != "" {
				r = r.WithContext(httpx.WithRequestID(r.Context(), tt.ctxID))
			}
			AccessLog(l, tt.handler).ServeHTTP(httptest.NewRecorder(), r)
			if strings.Contains(buf.String(), secret) || strings.Contains(buf.String(), "state=") {
				t.Fatalf("query in access log: %s", buf.String())
			}
			got := decodeLine(t, &buf)
			if got["msg"] != "request" || got["method"] != "GET" || got["path"] != "/bff/callback" {
				t.Errorf("line = %v", got)
			}
			if got["status"] != tt.wantStatus || got["bytes"] != tt.wantBytes || got["level"] != tt.wantLevel {
				t.Errorf("status, bytes, level = %v, %v, %v; want %v, %v, %v", got["status"], got["bytes"], got["level"], tt.wantStatus, tt.wantBytes, tt.wantLevel)
			}
			if got["request_id"] != tt.wantID {
				t.Errorf("request_id = %v, want %q", got["request_id"], tt.wantID)
			}
			if _, ok := got["duration"].(float64); !ok {
				t.Errorf("duration missing: %v", got)
			}
		})
	}
}

func TestAccessLogKeepsStreamingAndUpgrades(t *testing.T) {
	var buf bytes.Buffer
	l, _ := New("json", "info", &buf)
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("writer is not an http.Flusher")
		}
		io.WriteString(w, "event")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
	})
	mux.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\nhi")
		brw.Flush()
	})
	// A hijacked connection's handler outlives srv.Close, so wait for each
	// logged request explicitly.
	done := make(chan struct{}, 2)
	logged := AccessLog(l, mux)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logged.ServeHTTP(w, r)
		done <- struct{}{}
	}))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "event" {
		t.Errorf("stream body = %q", body)
	}

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
	br := bufio.NewReader(conn)
	up, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if up.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("upgrade status = %d", up.StatusCode)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "hi" {
		t.Errorf("after upgrade read %q", rest)
	}
	<-done
	<-done

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log lines = %q", lines)
	}
	statuses := map[string]float64{}
	for _, line := range lines {
		var m map[string]any
		json.Unmarshal([]byte(line), &m)
		statuses[m["path"].(string)] = m["status"].(float64)
	}
	if statuses["/stream"] != 200 || statuses["/upgrade"] != 101 {
		t.Errorf("statuses = %v", statuses)
	}
}

func TestRequestIDFromContext(t *testing.T) {
	var buf bytes.Buffer
	l := ForGatehouse(slog.New(slog.NewJSONHandler(&buf, nil)))
	ctx := httpx.WithRequestID(context.Background(), "rid-1")
	l.InfoContext(ctx, "with id", "token", "secret-value")
	l.InfoContext(ctx, "own id", RequestIDKey, "rid-2")
	l.InfoContext(context.Background(), "no id")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines: %s", len(lines), buf.String())
	}
	for i, want := range []string{`"request_id":"rid-1"`, `"request_id":"rid-2"`, ""} {
		if want != "" && !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %s; want %s", i, lines[i], want)
		}
		if want == "" && strings.Contains(lines[i], "request_id") {
			t.Errorf("line %d = %s; want no request id", i, lines[i])
		}
		if strings.Count(lines[i], "request_id") > 1 || strings.Contains(lines[i], "secret-value") {
			t.Errorf("line %d = %s", i, lines[i])
		}
	}
	ForGatehouse(nil).InfoContext(ctx, "discarded")
}
