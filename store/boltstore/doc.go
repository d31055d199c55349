// Package boltstore is a session store in one local bbolt database file.
//
// It suits a single Gatehouse instance that must keep its sessions across
// restarts without running a database server. Only one process can have the
// file open at a time; a second Open waits OpenTimeout for the lock and then
// fails with ErrLocked. New files are created with mode 0600; the records
// hold sealed session data and the hashes of cookie values, never a cookie.
//
// The file holds these buckets:
//
//	meta         format version
//	records      key → record (issuer, subject, sid, times, sealed data)
//	sid          len|issuer len|sid key → empty   (the sid index)
//	sub          len|issuer len|subject key → empty (the subject index)
//	expiry       expiry time key → empty        (for sweeping)
//	once         SHA-256(one-time key) → expiry time
//	once-expiry  expiry time SHA-256(one-time key) → empty
//
// Index keys are length-prefixed, so no two (issuer, value) pairs share
// one. A background goroutine sweeps expired records and one-time keys
// every SweepInterval until Close, twenty records per transaction.
//
// Writes that arrive together (logins, slides, logouts, one-time keys)
// share one transaction and one fsync (bbolt's Batch). New files have 2 KB
// pages, which fit records of a few KB with less rounding than 4 KB ones;
// a file keeps the page size it was created with. The list of free pages
// is not stored: Open rebuilds it by walking the file.
package boltstore
