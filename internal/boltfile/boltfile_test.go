package boltfile_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/internal/boltfile"
)

// fill writes a file of a few hundred KiB: nested buckets, small and
// overflowing values.
func fill(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range []string{"a", "b", "c"} {
			b, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			sub, err := b.CreateBucketIfNotExists([]byte("sub"))
			if err != nil {
				return err
			}
			for i := range 2000 {
				if err := b.Put(fmt.Appendf(nil, "key-%06d", i), fmt.Appendf(nil, `{"n":%d,"pad":"%0100d"}`, i, i)); err != nil {
					return err
				}
				if err := sub.Put(fmt.Appendf(nil, "k%06d", i), make([]byte, i%64)); err != nil {
					return err
				}
			}
			if err := b.Put([]byte("big"), make([]byte, 20000)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// verify checks that db holds what fill wrote.
func verify(db *bbolt.DB) error {
	return db.View(func(tx *bbolt.Tx) error {
		for _, name := range []string{"a", "b", "c"} {
			b := tx.Bucket([]byte(name))
			if b == nil || b.Bucket([]byte("sub")) == nil {
				return fmt.Errorf("bucket %s is missing", name)
			}
			for i := range 2000 {
				got, want := b.Get(fmt.Appendf(nil, "key-%06d", i)), fmt.Sprintf(`{"n":%d,"pad":"%0100d"}`, i, i)
				if string(got) != want {
					return fmt.Errorf("%s/key-%06d = %q, want %q", name, i, got, want)
				}
				if got := b.Bucket([]byte("sub")).Get(fmt.Appendf(nil, "k%06d", i)); len(got) != i%64 {
					return fmt.Errorf("%s/sub/k%06d has %d bytes, want %d", name, i, len(got), i%64)
				}
			}
		}
		return nil
	})
}

func TestOpenRefusesDamagedFiles(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"truncated to 32 KiB", func(t *testing.T, path string) {
			if err := os.Truncate(path, 32<<10); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated to 1 KiB", func(t *testing.T, path string) {
			if err := os.Truncate(path, 1<<10); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for seed := uint64(1); seed <= 20; seed++ {
		tests = append(tests, struct {
			name   string
			damage func(t *testing.T, path string)
		}{fmt.Sprintf("random pages overwritten, seed %d", seed), func(t *testing.T, path string) {
			OverwritePages(t, path, seed, 3)
		}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.db")
			fill(t, path)
			tt.damage(t, path)
			db, err := boltfile.Open(path, nil)
			if err == nil {
				// Only pages no longer in use were hit: then every value
				// must read back as written.
				defer db.Close()
				if err := verify(db); err != nil {
					t.Fatalf("Open(damaged) = nil error, and the data is wrong: %v", err)
				}
				return
			}
			if !errors.Is(err, boltfile.ErrDamaged) {
				t.Errorf("Open(damaged) = %v, want it to wrap ErrDamaged", err)
			}
		})
	}
}

func TestOpenAcceptsSoundFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	fill(t, path)
	db, err := boltfile.Open(path, nil)
	if err != nil {
		t.Fatalf("Open(sound) = %v", err)
	}
	db.Close()
	// A new file is sound too.
	db, err = boltfile.Open(filepath.Join(t.TempDir(), "new.db"), nil)
	if err != nil {
		t.Fatalf("Open(new) = %v", err)
	}
	db.Close()
}

// OverwritePages writes random bytes over n random pages of the file,
// never the two meta pages, with a seeded source.
func OverwritePages(t *testing.T, path string, seed uint64, n int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	pages := len(data) / page
	rnd := rand.New(rand.NewPCG(seed*0x9E3779B97F4A7C15, seed))
	for range n {
		p := 2 + rnd.IntN(pages-2)
		for i := p * page; i < (p+1)*page; i++ {
			data[i] = byte(rnd.Uint32())
		}
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
