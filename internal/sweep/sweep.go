// Package sweep runs a store's periodic removal of expired records.
package sweep

import "time"

// Done is the message stores log, at debug level, after a sweep that
// removed expired sessions, with their "count" and the time it "took".
const Done = "expired sessions swept"

// Every calls sweep every interval until stop is closed, then returns.
// Stores run it in a goroutine of their own and close stop from Close.
func Every(interval time.Duration, stop <-chan struct{}, sweep func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			sweep()
		}
	}
}
