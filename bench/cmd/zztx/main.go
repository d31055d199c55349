package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

func main() {
	t0 := time.Now()
	db, err := bolt.Open(os.Args[1], 0o600, &bolt.Options{NoFreelistSync: os.Getenv("NOFL") != "", FreelistType: bolt.FreelistMapType})
	fmt.Println("open", time.Since(t0), db.Stats().FreePageN)
	if err != nil {
		panic(err)
	}
	defer db.Close()
	var keys [][]byte
	db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte("records")).Cursor()
		i := 0
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if i%20 == 0 {
				keys = append(keys, bytes.Clone(k))
			}
			i++
		}
		return nil
	})
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	for _, n := range []int{10, 50, 100, 200, 1000} {
		for rep := 0; rep < 3; rep++ {
			batch := keys[:n]
			keys = keys[n:]
			t0 := time.Now()
			db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("records"))
				for _, k := range batch {
					b.Delete(k)
				}
				return nil
			})
			fmt.Printf("delete %4d records: %v\n", n, time.Since(t0))
		}
	}
}
