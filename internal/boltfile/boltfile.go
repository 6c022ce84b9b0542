// Package boltfile opens bbolt files that may be damaged.
//
// bbolt trusts its file: a page overwritten with garbage or a file cut
// short makes it panic, or fault on memory past the end of the mapping,
// at the first read that reaches the damage, which may be long after the
// file was opened. Open reads every page reachable from the file's roots
// before it returns, in a goroutine that turns such panics and faults into
// errors, so that a damaged file is refused at once with ErrDamaged and
// never crashes a process that is already serving.
package boltfile

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrDamaged is returned, wrapped with the details, for a file that bbolt
// cannot read safely.
var ErrDamaged = errors.New("the file is damaged")

// Open opens the bbolt file at path with opts, then checks it: its size
// against its pages, every bucket, key and value, and bbolt's own
// consistency check. A file that fails returns an error wrapping
// ErrDamaged; other errors of bbolt.Open, bolterrors.ErrTimeout among them, are
// returned as they are.
func Open(path string, opts *bbolt.Options) (db *bbolt.DB, err error) {
	err = Protect(func() error {
		var oerr error
		db, oerr = bbolt.Open(path, 0o600, opts)
		return oerr
	})
	if err != nil {
		if errors.Is(err, ErrDamaged) || !isFormatError(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	if err := Check(db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// isFormatError reports whether err from bbolt.Open says the file's
// content is unreadable, as opposed to its lock or the operating system.
func isFormatError(err error) bool {
	if errors.Is(err, bolterrors.ErrTimeout) || errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrNotExist) {
		return false
	}
	var pe *os.PathError
	return !errors.As(err, &pe)
}

// Check reads the whole of db: it returns an error wrapping ErrDamaged if
// the file is shorter than its pages, if any page reachable from the root
// cannot be read, or if bbolt's consistency check finds a fault.
func Check(db *bbolt.DB) error {
	return db.View(func(tx *bbolt.Tx) error {
		st, err := os.Stat(db.Path())
		if err != nil {
			return err
		}
		// Pages past the end of the file fault when read: say so plainly.
		if tx.Size() > st.Size() {
			return fmt.Errorf("%w: it is %d bytes long but its pages need %d (was it truncated?)", ErrDamaged, st.Size(), tx.Size())
		}
		// Walk first, in a goroutine that survives faults: bbolt's own
		// check runs in a goroutine of its own, which recovers panics but
		// not faults, so it must only meet pages the walk has read.
		if err := Protect(func() error { return walk(tx) }); err != nil {
			return err
		}
		// Report the first faults only: one damaged page can make hundreds.
		var faults []error
		n := 0
		for cerr := range tx.Check() {
			if n++; len(faults) < 3 {
				faults = append(faults, cerr)
			}
		}
		if n == 0 {
			return nil
		}
		if n > len(faults) {
			faults = append(faults, fmt.Errorf("and %d more faults", n-len(faults)))
		}
		return fmt.Errorf("%w: %w", ErrDamaged, errors.Join(faults...))
	})
}

// walk reads every key and value of every bucket.
func walk(tx *bbolt.Tx) error {
	var each func(b *bbolt.Bucket) error
	each = func(b *bbolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v != nil {
				return nil
			}
			child := b.Bucket(k)
			if child == nil {
				return fmt.Errorf("%w: bucket %q cannot be read", ErrDamaged, k)
			}
			return each(child)
		})
	}
	return tx.ForEach(func(name []byte, b *bbolt.Bucket) error { return each(b) })
}

// Protect runs fn, turning a panic or a memory fault inside it, which is
// how bbolt meets a damaged page, into an error wrapping ErrDamaged. fn
// must not start goroutines that touch the file.
func Protect(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrDamaged, r)
		}
	}()
	return fn()
}
