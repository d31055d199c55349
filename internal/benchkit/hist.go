package benchkit

import (
	"math/bits"
	"slices"
	"time"
)

// histSub is the number of sub-buckets per power of two: latencies are
// kept to within 1/16 (about 6%), whatever their size.
const histSub = 16

// Hist is a latency histogram with logarithmic buckets. The zero value is
// empty and ready to use. It is not safe for concurrent use: give each
// worker its own and Merge them.
type Hist struct {
	counts []uint64
	n      uint64
	max    time.Duration
}

func bucketOf(d time.Duration) int {
	v := uint64(max(d, 1))
	e := bits.Len64(v) // v in [2^(e-1), 2^e)
	if e <= 5 {
		return int(v)
	}
	m := (v >> (e - 5)) & (histSub - 1) // the 4 bits after the leading one
	return e*histSub + int(m)
}

func bucketValue(b int) time.Duration {
	if b < 32 {
		return time.Duration(b)
	}
	e, m := b/histSub, b%histSub
	lo := uint64(1)<<(e-1) | uint64(m)<<(e-5)
	return time.Duration(lo + uint64(1)<<(e-6)) // middle of the bucket
}

// Record adds one observation.
func (h *Hist) Record(d time.Duration) {
	b := bucketOf(d)
	if b >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, b+1-len(h.counts))...)
	}
	h.counts[b]++
	h.n++
	h.max = max(h.max, d)
}

// Merge adds o's observations to h.
func (h *Hist) Merge(o *Hist) {
	if len(o.counts) > len(h.counts) {
		h.counts = append(h.counts, make([]uint64, len(o.counts)-len(h.counts))...)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count returns the number of observations.
func (h *Hist) Count() uint64 { return h.n }

// Max returns the largest observation.
func (h *Hist) Max() time.Duration { return h.max }

// Quantile returns the q-quantile (0 < q <= 1), or 0 when h is empty.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	if rank == h.n {
		return h.max
	}
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(bucketValue(b), h.max)
		}
	}
	return h.max
}

// Median returns the median of xs (the lower middle for an even count), or
// the zero value for none.
func Median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		var zero T
		return zero
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}
