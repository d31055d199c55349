package redisstore

// Cached reports whether key is in s's local cache and usable.
func Cached(s *Store, key string) bool {
	_, ok := s.cache.get(key, s.now())
	return ok
}
