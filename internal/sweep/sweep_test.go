package sweep

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestEverySweepsUntilStopped(t *testing.T) {
	stop, done := make(chan struct{}), make(chan struct{})
	var n atomic.Int32
	go func() { Every(time.Millisecond, stop, func() { n.Add(1) }); close(done) }()
	for deadline := time.Now().Add(5 * time.Second); n.Load() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no sweeps")
		}
	}
	close(stop)
	<-done
	after := n.Load()
	time.Sleep(10 * time.Millisecond)
	if n.Load() != after {
		t.Fatal("swept after stop")
	}
}
