package main

import (
	"crypto/rand"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

func main() {
	for _, fill := range []float64{0.5, 0.7, 0.9, 1.0} {
		for _, seq := range []bool{false, true} {
			path := "/tmp/zzfill.db"
			os.Remove(path)
			db, _ := bolt.Open(path, 0o600, &bolt.Options{PageSize: 2048, NoSync: true})
			db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err })
			for i := 0; i < 100000; i += 10 {
				db.Update(func(tx *bolt.Tx) error {
					b := tx.Bucket([]byte("b"))
					b.FillPercent = fill
					for j := 0; j < 10; j++ {
						k := make([]byte, 120)
						rand.Read(k)
						if seq {
							copy(k, fmt.Sprintf("%010d", i+j))
						}
						b.Put(k, nil)
					}
					return nil
				})
			}
			db.View(func(tx *bolt.Tx) error {
				s := tx.Bucket([]byte("b")).Stats()
				fmt.Printf("fill %.1f seq %v: leaf alloc %d inuse %d (%.0f%%)\n", fill, seq, s.LeafAlloc, s.LeafInuse, 100*float64(s.LeafInuse)/float64(s.LeafAlloc))
				return nil
			})
			db.Close()
		}
	}
}
