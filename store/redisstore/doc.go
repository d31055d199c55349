// Package redisstore is a session store on Redis, for Gatehouse replicas
// that share their sessions.
//
// It works with any redis.UniversalClient: a single node, Sentinel
// (failover) or Cluster. Every change that touches more than one key runs as
// one Lua script, so a record and its indexes never disagree, and Update and
// Touch cannot bring back a record that a concurrent Delete or logout ended.
// Records carry a PEXPIREAT at their ExpiresAt, so Redis itself removes
// expired sessions; the store needs no sweeper and never uses KEYS or SCAN.
//
// Keys, under Options.Prefix (default "{gatehouse}:"):
//
//	{prefix}s:{key}       hash: the record (sealed data, issuer, subject,
//	                      sid, times, and the names of its index sets)
//	{prefix}sid:{h}       set of record keys; h hashes (issuer, sid)
//	{prefix}sub:{h}       set of record keys; h hashes (issuer, subject)
//	{prefix}o:{h}         one-time key; h hashes the caller's key
//
// h is the unpadded base64url SHA-256 of the length-prefixed values, so key
// names never carry a raw issuer, subject, sid, state or jti, whatever shows
// key names (monitoring, slow logs, memory reports). An index set expires no
// sooner than its longest-lived member; members whose record Redis expired
// are dropped when the set is next listed or used for a logout.
//
// # Redis Cluster
//
// Scripts may only touch keys of one hash slot on a Cluster. The default
// prefix is a hash tag, so all of a store's keys live in one slot and every
// script works; the price is that one shard (and its replicas) holds all
// sessions of that store, which is no limit in practice for session data. A
// custom Prefix must keep a {hash tag} for Cluster; distinct tags give
// distinct stores (for example one per Gatehouse deployment). On a single
// node or Sentinel the tag is harmless.
package redisstore
