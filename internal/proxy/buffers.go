package proxy

import "sync"

// copyBufferSize is the size of the buffers ReverseProxy copies response
// bodies through: its own default.
const copyBufferSize = 32 << 10

// bufferPool lends the ReverseProxy its copy buffers, so that a response
// does not allocate 32 KiB that the garbage collector then has to sweep.
// A buffer holds response body bytes only while one copy runs, and the
// proxy never gives it to anyone else.
type bufferPool struct{ p sync.Pool }

var buffers = &bufferPool{p: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}

func (bp *bufferPool) Get() []byte { return bp.p.Get().(*[copyBufferSize]byte)[:] }

// Put takes back a buffer Get lent; the pool holds array pointers, so
// putting one back allocates nothing.
func (bp *bufferPool) Put(b []byte) {
	if cap(b) != copyBufferSize {
		return
	}
	bp.p.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
}
