package tracing

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// fakeStore implements every store interface, fails each call with err,
// and records the span context each call ran in.
func TestStoreTracesEveryOperation(t *testing.T) {
	const secretKey = "KEY-5ecret-k"
	// The store's error quotes the key; the span must not.
	fail := errors.New("backend down reading " + secretKey)
	tests := []struct {
		name      string
		err       error
		wantError bool
	}{
		{"success", nil, false},
		{"not found is no failure", store.ErrNotFound, false},
		{"failure", fail, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, exp := newEnabled(t, Options{})
			var seen []trace.SpanContext
			inner := &testkit.FailingStore{Err: tt.err, Seen: func(ctx context.Context) { seen = append(seen, trace.SpanContextFromContext(ctx)) }}
			s := tr.Store(inner)
			ctx, parent := tr.TracerProvider().Tracer("test").Start(context.Background(), "request")
			calls := []struct {
				op   string
				call func() error
			}{
				{"get", func() error { _, err := s.Get(ctx, secretKey); return err }},
				{"create", func() error { return s.Create(ctx, &store.Record{Key: secretKey, Subject: secretUser}) }},
				{"update", func() error { return s.Update(ctx, &store.Record{Key: secretKey, Subject: secretUser}) }},
				{"delete", func() error { return s.Delete(ctx, secretKey) }},
				{"delete_matching", func() error {
					_, err := s.DeleteMatching(ctx, store.Filter{Issuer: "iss", SID: secretUser})
					return err
				}},
				{"list", func() error { _, err := s.List(ctx, store.Filter{Issuer: "iss", Subject: secretUser}); return err }},
				{"once", func() error { _, err := s.Once(ctx, secretKey, time.Second); return err }},
				{"ping", func() error { return s.Ping(ctx) }},
			}
			for _, c := range calls {
				if err := c.call(); !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
					t.Errorf("%s: error %v, want %v passed through", c.op, err, tt.err)
				}
			}
			parent.End()
			got := spans(t, tr, exp)
			if len(got) != len(calls)+1 {
				t.Fatalf("got spans %v, want one per call and the parent", names(got))
			}
			for i, c := range calls {
				sp := got[i]
				if sp.Name != "session.store "+c.op || sp.SpanKind != trace.SpanKindInternal {
					t.Errorf("span %d is %q of kind %v, want session.store %s", i, sp.Name, sp.SpanKind, c.op)
				}
				if sp.Parent.SpanID() != parent.SpanContext().SpanID() {
					t.Errorf("%s: span is not a child of the request span", c.op)
				}
				if seen[i].SpanID() != sp.SpanContext.SpanID() {
					t.Errorf("%s: the store call did not run in its span's context", c.op)
				}
				if v, ok := attr(sp, "db.operation.name"); !ok || v.AsString() != c.op {
					t.Errorf("%s: db.operation.name = %q", c.op, v.String())
				}
				if isErr := sp.Status.Code == codes.Error; isErr != tt.wantError {
					t.Errorf("%s: status %v, want error %v", c.op, sp.Status.Code, tt.wantError)
				}
				if v, ok := attr(sp, "error.type"); ok != tt.wantError || (ok && v.AsString() != "*errors.errorString") {
					t.Errorf("%s: error.type %q (present %v), want present %v", c.op, v.String(), ok, tt.wantError)
				}
			}
			checkNo := append([]string{secretKey}, secrets...)
			for _, sp := range got {
				for _, kv := range sp.Attributes {
					for _, sec := range checkNo {
						if v := kv.Value.String(); strings.Contains(v, sec) {
							t.Errorf("%s attribute %s = %q contains a secret", sp.Name, kv.Key, v)
						}
					}
				}
				for _, sec := range checkNo {
					if strings.Contains(sp.Status.Description, sec) {
						t.Errorf("%s status %q contains a secret", sp.Name, sp.Status.Description)
					}
				}
			}
		})
	}
}

func TestStoreWithMemstore(t *testing.T) {
	ctx := context.Background()
	tr, exp := newEnabled(t, Options{})
	inner := memstore.New(memstore.Options{SweepInterval: -1})
	s := tr.Store(inner)
	defer s.Close()
	rec := &store.Record{Key: "k", Issuer: "iss", Subject: "sub", ExpiresAt: time.Now().Add(time.Hour), Data: []byte("d")}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "k"); err != nil || string(got.Data) != "d" {
		t.Fatalf("Get = %v, %v", got, err)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
	got := spans(t, tr, exp)
	want := []string{"session.store create", "session.store get", "session.store get"}
	if len(got) != len(want) {
		t.Fatalf("spans %v, want %v", names(got), want)
	}
	for i, sp := range got {
		if sp.Name != want[i] || sp.Status.Code == codes.Error {
			t.Errorf("span %d: %q status %v, want %q without error", i, sp.Name, sp.Status.Code, want[i])
		}
	}
}

func TestDisabledStoreIsTheStore(t *testing.T) {
	inner := memstore.New(memstore.Options{SweepInterval: -1})
	defer inner.Close()
	var disabled *Tracing
	if s := disabled.Store(inner); s != store.Store(inner) {
		t.Error("a nil Tracing wrapped the store")
	}
	tr, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s := tr.Store(inner); s != store.Store(inner) {
		t.Error("a disabled Tracing wrapped the store")
	}
}
