package dpop

import (
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary proofs to Verify: it must never panic, and
// whatever it accepts must carry the request's htm.
func FuzzVerify(f *testing.F) {
	k, err := NewKey()
	if err != nil {
		f.Fatal(err)
	}
	good, _ := k.Proof("POST", tokenURL, "at", "n", t0)
	f.Add(good)
	f.Add("e30.e30.")
	f.Add("a.b.c.d.e")
	f.Fuzz(func(t *testing.T, proof string) {
		c, err := VerifyProof(proof, "POST", tokenURL, "at", t0, time.Minute)
		if err == nil && (c.HTM != "POST" || c.JKT == "") {
			t.Fatalf("accepted proof with claims %+v", c)
		}
	})
}
