// Package memstore is a session store that keeps records in process memory.
//
// It suits a single Gatehouse instance, development and tests: sessions and
// one-time values are lost when the process exits and are not shared between
// replicas. It implements store.Store, session.Lister, session.OnceStore
// and session.Sweeper; a background goroutine sweeps expired entries until
// Close.
package memstore
