package tracing

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// collector is an OTLP/HTTP trace receiver on loopback.
type collector struct {
	*httptest.Server
	mu     sync.Mutex
	paths  []string
	bodies [][]byte
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.paths = append(c.paths, r.URL.Path)
		c.bodies = append(c.bodies, body)
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

func TestOTLPExport(t *testing.T) {
	tests := []struct {
		name, path, wantPath string
	}{
		{"default path", "", "/v1/traces"},
		{"root path", "/", "/v1/traces"},
		{"explicit path", "/otel/v1/traces", "/otel/v1/traces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			col := newCollector(t)
			tr, err := New(context.Background(), Options{OTLPEndpoint: col.URL + tt.path, ServiceName: "gatehouse-otlp"})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Shutdown(context.Background())
			if !tr.Enabled() {
				t.Fatal("tracing with an endpoint is not enabled")
			}
			up := newUpstream(t)
			browserGet(t, gateway(t, tr, up), nil)
			if err := tr.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}

			col.mu.Lock()
			paths, bodies := col.paths, col.bodies
			col.mu.Unlock()
			if len(paths) == 0 {
				t.Fatal("the collector received nothing")
			}
			var names []string
			for i, body := range bodies {
				if paths[i] != tt.wantPath {
					t.Errorf("export sent to %q, want %q", paths[i], tt.wantPath)
				}
				for _, s := range secrets {
					if bytes.Contains(body, []byte(s)) {
						t.Errorf("export contains the secret %q", s)
					}
				}
				var req collectortrace.ExportTraceServiceRequest
				if err := proto.Unmarshal(body, &req); err != nil {
					t.Fatal(err)
				}
				for _, rs := range req.ResourceSpans {
					for _, ss := range rs.ScopeSpans {
						for _, s := range ss.Spans {
							names = append(names, s.Name)
						}
					}
				}
			}
			if len(names) != 2 || !bytes.Contains(bodies[0], []byte("gatehouse-otlp")) {
				t.Errorf("exported spans %v; want the server and client span of service gatehouse-otlp", names)
			}
		})
	}
}
