package redisstore

import "github.com/gatehouse-bff/gatehouse/store"

// Cached reports whether key is in s's local cache and usable.
func Cached(st store.Store, key string) bool {
	s := st.(*redisStore)
	_, ok := s.cache.get(key, s.now())
	return ok
}

// IndexHash names the index of an (issuer, value) pair.
var IndexHash = indexHash
