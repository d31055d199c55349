package admin_test

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/admin"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

// An embedding program signs a user out everywhere, for example after an
// account is disabled.
func ExampleService_EndSubject() {
	ctx := context.Background()
	store := memstore.New(memstore.Options{SweepInterval: -1})
	defer store.Close()
	sessions, _ := session.NewManager(session.Options{
		Store: store, Ring: seal.Ephemeral(), CookieName: "__Host-gatehouse",
		IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 8 * time.Hour,
	})
	for range 2 {
		sessions.Create(ctx, &session.Session{Issuer: "https://idp.example", Subject: "alice"})
	}

	svc := admin.NewService(sessions)
	list, _ := svc.List(ctx, "https://idp.example", "alice")
	fmt.Println("sessions:", len(list))
	n, err := svc.EndSubject(ctx, "https://idp.example", "alice")
	fmt.Println("ended:", n, err)
	// Output:
	// sessions: 2
	// ended: 2 <nil>
}
