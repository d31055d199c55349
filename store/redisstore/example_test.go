package redisstore_test

import (
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/redisstore"
)

func ExampleNew() {
	// A single node; redis.NewFailoverClient (Sentinel) and
	// redis.NewClusterClient work the same way.
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()

	var store store.Store = redisstore.New(client, redisstore.Options{
		// One hash tag per deployment keeps its keys in one Cluster slot.
		Prefix: "{gatehouse-prod}:",
	})
	defer store.Close()
}
