package assertion

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/redistest"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	"github.com/gatehouse-bff/gatehouse/store/redisstore"
)

// Replicas starting at once on one Redis elect one creator: they all end
// up signing with the same key.
func TestReplicasOnRedisShareOneKey(t *testing.T) {
	rc := redistest.Client(t)
	prefix := redistest.Prefix(t, rc)
	clock := testkit.NewClock(time.Now())
	key, err := seal.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	k, _ := seal.ParseKey(key)
	ring, _ := seal.NewRing(k)
	const n = 6
	signers := make([]*Signer, n)
	raws := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		st := redisstore.New(rc, redisstore.Options{Prefix: prefix, Now: clock.Now})
		t.Cleanup(func() { st.Close() })
		signers[i] = newSigner(t, st, ring, clock)
		wg.Go(func() {
			raw, err := signers[i].Sign(context.Background(), "https://api", "alice", nil)
			if err != nil {
				t.Error(err)
			}
			raws[i] = raw
		})
	}
	wg.Wait()
	first, _ := jwks(t, signers[0])
	for i := range n {
		set, _ := jwks(t, signers[i])
		if len(set.Keys) != 1 || !slices.Equal(kids(set), kids(first)) {
			t.Errorf("replica %d publishes %q, replica 0 %q", i, kids(set), kids(first))
		}
		if _, err := verify(t, first, raws[i], "https://api", clock.Now()); err != nil {
			t.Errorf("replica %d's assertion does not verify with replica 0's keys: %v", i, err)
		}
	}
}
