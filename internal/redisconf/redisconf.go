// Package redisconf builds the Redis client that Gatehouse's configuration
// describes, so the gateway and the deployment doctor connect alike.
package redisconf

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-bff/gatehouse/config"
)

// Client returns a client for session.redis_url or the redis block, with
// every call bounded by redis.timeout and a bounded pool, so that a Redis
// outage turns into prompt errors rather than piled-up goroutines.
// maxRetries is go-redis's MaxRetries (-1: none, 0: its default).
func Client(cfg *config.Config, maxRetries int) (redis.UniversalClient, error) {
	rc := cfg.Redis
	if cfg.Session.RedisURL != "" {
		o, err := redis.ParseURL(cfg.Session.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("redisconf: session.redis_url: %w", err)
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = rc.Timeout, rc.Timeout, rc.Timeout, rc.Timeout
		o.MaxRetries = maxRetries
		if rc.PoolSize > 0 {
			o.PoolSize = rc.PoolSize
		}
		return redis.NewClient(o), nil
	}
	o := &redis.UniversalOptions{
		Addrs:         rc.Addrs,
		MasterName:    rc.MasterName,
		IsClusterMode: rc.Cluster,
		Username:      rc.Username,
		Password:      rc.Password,
		DB:            rc.DB,
		DialTimeout:   rc.Timeout,
		ReadTimeout:   rc.Timeout,
		WriteTimeout:  rc.Timeout,
		PoolTimeout:   rc.Timeout,
		PoolSize:      rc.PoolSize,
		MaxRetries:    maxRetries,
	}
	if rc.TLS {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if rc.Cluster {
		// go-redis reloads the slot map on MOVED or READONLY answers, but
		// not when a master stops answering at all: it would go on dialling
		// the dead master until its default 60 s reload. Reloading the map
		// (one CLUSTER SLOTS, in the background, only while commands flow)
		// every ClusterStateReload finds the promoted replica within that
		// time of the promotion.
		co := o.Cluster()
		co.ClusterStateReloadInterval = ClusterStateReload
		return redis.NewClusterClient(co), nil
	}
	return redis.NewUniversalClient(o), nil
}

// ClusterStateReload is how often a Cluster client reloads the slot map.
const ClusterStateReload = time.Second
