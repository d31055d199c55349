// Package pgstore is a session store on PostgreSQL, for Gatehouse replicas
// that share their sessions through a database they already run.
//
// It uses a jackc/pgx/v5 connection pool and bounds every call with a
// timeout. At start it creates or migrates its tables under a
// transaction-scoped advisory lock, so gateways starting together migrate
// once; a schema newer than the code knows is refused.
//
// Tables, under Options.TablePrefix (default "gatehouse_") in the first
// schema of the connection's search_path (set search_path in the DSN to
// use another schema):
//
//	{prefix}schema     applied schema versions
//	{prefix}sessions   key, app, issuer, subject, sid, last_seen,
//	                   expires_at, data; indexed by (issuer, sid),
//	                   (issuer, subject) and expires_at
//	{prefix}once       SHA-256 of each one-time key, with its expiry
//
// The string columns are bytea: values pass through byte for byte, whatever
// they hold (a NUL, invalid UTF-8), and no collation or encoding applies.
// To read one in psql, use convert_from(subject, 'UTF8').
//
// The store never sees a cookie or a token: a session key is the hash of
// the cookie value that Gatehouse computes, and data is the session sealed
// by Gatehouse before it reaches the store. One-time keys (login states,
// logout token ids) are stored as their SHA-256 only.
//
// Expiry is decided by Options.Now, not by the database clock: Get, List
// and Update ignore expired rows at once, and a background goroutine
// deletes them in batches of 1000, oldest first, found on the expiry index
// and skipping locked rows (FOR UPDATE SKIP LOCKED), so no sweep holds
// long locks or waits on a request or on a replica sweeping at the same
// time. Replicas sharing a database should keep their clocks in sync, as
// they must for token expiry anyway.
//
// pgStore also implements store.Locker with pg_advisory_xact_lock: the lock
// lives in a transaction on a connection of its own, which the server
// terminates (idle_in_transaction_session_timeout) and the store rolls back
// when the ttl passes, so a lock frees itself even when its holder hangs
// or loses the network. At most half of the pool's connections hold or
// wait for locks, so sessions stay readable while refreshes wait.
package pgstore
