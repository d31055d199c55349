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
//	{prefix}s:{key}       string: the record (issuer, subject, sid, app,
//	                      times and the names of its indexes, each length-
//	                      prefixed, then the sealed data); Get is one GET
//	{prefix}sid:{h}       hash whose fields are record keys; h hashes
//	                      (issuer, sid)
//	{prefix}sub:{h}       hash whose fields are record keys; h hashes
//	                      (issuer, subject)
//	{prefix}o:{h}         one-time key; h hashes the caller's key
//
// h is the unpadded base64url SHA-256 of the length-prefixed values, so key
// names never carry a raw issuer, subject, sid, state or jti, whatever shows
// key names (monitoring, slow logs, memory reports). An index expires no
// sooner than its longest-lived member; members whose record Redis expired
// are dropped when the index is next listed or used for a logout. A small
// hash is stored compactly by Redis (a listpack), where a set of strings is
// a hash table; with the record in one string, a session of 2.6 KB of sealed
// data costs Redis about 1.4 times that.
//
// Earlier versions wrote each record as a hash and each index as a set.
// The store reads both; a record becomes a string when it is next written
// (the first slide of its deadline), and old index sets expire with their
// last member.
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
