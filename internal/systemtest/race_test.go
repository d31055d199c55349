//go:build race

package systemtest

// raceEnabled: the race detector is on; sync.Pool then drops what it is
// given at random, so allocation counts are not the production ones.
const raceEnabled = true
