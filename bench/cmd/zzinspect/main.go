package main

import (
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

func main() {
	db, err := bolt.Open(os.Args[1], 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	st := db.Stats()
	fmt.Printf("pagesize %d free pages %d pending %d freealloc %d freelist inuse %d\n", db.Info().PageSize, st.FreePageN, st.PendingPageN, st.FreeAlloc, st.FreelistInuse)
	db.View(func(tx *bolt.Tx) error {
		fmt.Printf("tx size %d\n", tx.Size())
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			s := b.Stats()
			fmt.Printf("%-12s keys %8d depth %d leaf pages %7d overflow %7d alloc %10d inuse %10d (%.0f%%) branch alloc %9d inuse %9d\n", name, s.KeyN, s.Depth, s.LeafPageN, s.LeafOverflowN, s.LeafAlloc, s.LeafInuse, 100*float64(s.LeafInuse)/float64(max(s.LeafAlloc, 1)), s.BranchAlloc, s.BranchInuse)
			return nil
		})
	})
}
