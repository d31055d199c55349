// Package storetest is the conformance suite for store.Store backends.
//
// Every backend's tests call Run with a constructor, so the memory store, the
// embedded bbolt store and the Redis store are held to one contract: missing
// and expired records are store.ErrNotFound, Update and Touch never bring
// an ended session back, the issuer/sid and issuer/subject indexes follow
// every change, and the optional Lister, OnceStore, Pinger and Sweeper
// interfaces behave as documented in package session.
package storetest
