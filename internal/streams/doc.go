// Package streams ends what a session holds open when the session ends.
//
// Every API call proxied for a session is tracked (Registry.Track) by the
// session's store key; when its response turns out to stay open (an
// upgraded WebSocket connection, an event stream, a body of unknown
// length) it becomes a stream. A stream is closed when:
//
//   - the session ends on this replica: the session manager's OnEnd calls
//     Registry.End for every end, whatever the reason;
//   - the session ends on another replica: End publishes the keys through
//     a Notifier (Redis pub/sub, see NewRedisNotifier) and every replica
//     closes its streams of those keys;
//   - the session reaches its idle or absolute deadline: a timer per
//     stream checks the session again at that moment;
//   - a periodic re-check (every Options.Interval, 2s by default) finds
//     the session gone. This runs whether or not the notifier works, so a
//     lost message or a broken channel delays a close by at most one
//     interval: the bound degrades, it never disappears.
//
// Closing a stream cancels the context of the upstream call and, for an
// upgraded connection, closes the browser's hijacked connection, so both
// sides see the end at once (OWASP ASVS V3.3: everything held open for a
// session ends with it).
package streams
