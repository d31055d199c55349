package benchkit

import (
	"testing"
	"time"
)

func TestHistQuantilesWithinBucketPrecision(t *testing.T) {
	var h Hist
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, 1000 * time.Microsecond}} {
		got := h.Quantile(tc.q)
		if diff := float64(got-tc.want) / float64(tc.want); diff > 1.0/16 || diff < -1.0/16 {
			t.Errorf("Quantile(%v) = %v, want %v within 1/16", tc.q, got, tc.want)
		}
	}
	var o Hist
	o.Record(time.Second)
	h.Merge(&o)
	if h.Count() != 1001 || h.Max() != time.Second || h.Quantile(1) != time.Second {
		t.Errorf("after Merge: count %d max %v q1 %v", h.Count(), h.Max(), h.Quantile(1))
	}
	if Median([]float64{3, 1, 2, 10}) != 2 {
		t.Errorf("Median = %v, want 2", Median([]float64{3, 1, 2, 10}))
	}
}

func TestParseWrk(t *testing.T) {
	out := `Running 2s test @ http://127.0.0.1:1/api/orders
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.10ms    2.01ms  31.20ms   80.00%
  Latency Distribution
     50%  812.00us
     75%    5.98ms
     90%    7.60ms
     99%   12.34ms
  25000 requests in 2.00s, 8.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  12500.50
Transfer/sec:      4.00MB
`
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS != 12500.5 || r.P50 != 812*time.Microsecond || r.P99 != 12340*time.Microsecond || r.Requests != 25000 || r.Errors != 7 {
		t.Errorf("parseWrk = %+v", r)
	}
	if _, err := parseWrk("garbage"); err == nil {
		t.Error("parseWrk accepted output without Requests/sec")
	}
}
