// Package datadir refuses to start a process on a data directory whose
// stores were lost or damaged, and says how to recover: bbolt would
// silently create a fresh file where a database went missing, and the
// acknowledged events, the dedup history or the partners would be gone
// without a word. It owns the rule "an empty store next to evidence of
// data is an error unless --init" (CheckNotLost) and the recovery advice
// for a damaged control database or journal.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchbackhq/switchback/internal/boltfile"
)

// CheckNotLost refuses to start when a store is empty (missing or
// 0 bytes) while the data directory shows that data existed: bbolt would
// silently create a fresh file, and the acknowledged events, the dedup
// history or the partners would be gone without a word. evidence lists
// files that exist only once a store has held data (the other stores are
// evidence too). init says that an empty store is intended. The error
// names the empty stores and the evidence.
func CheckNotLost(init bool, stores, evidence []string) error {
	if init {
		return nil
	}
	var empty, held []string
	for _, s := range stores {
		if FileSize(s) > 0 {
			held = append(held, s)
		} else {
			empty = append(empty, s)
		}
	}
	for _, e := range evidence {
		if FileSize(e) > 0 {
			held = append(held, e)
		}
	}
	if len(empty) == 0 || len(held) == 0 {
		return nil
	}
	return fmt.Errorf("%s is empty or missing, but %s is not: this data directory held data, so the store was lost or truncated.\n"+
		"  Restore it from a backup, or, if an empty store is intended, start once with --init.",
		strings.Join(empty, " and "), strings.Join(held, ", "))
}

// Journal returns the path of the journal named file in dir, a router's
// data directory, or in dir/ingress when dir is serve's and holds none of
// its own. A journal missing or empty in both is an error: there is
// nothing to read.
func Journal(dir, file string) (string, error) {
	path := filepath.Join(dir, file)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if alt := filepath.Join(dir, "ingress", file); FileSize(alt) > 0 {
			path = alt
		}
	}
	if FileSize(path) == 0 {
		return "", fmt.Errorf("%s is missing or empty: no events to read", path)
	}
	return path, nil
}

// FileSize is the size of the file at path, 0 when there is none.
func FileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// DamagedControlDB returns err, and when it is boltfile.ErrDamaged wraps
// it with how to recover the control database at path.
func DamagedControlDB(err error, path string) error {
	if !errors.Is(err, boltfile.ErrDamaged) {
		return err
	}
	return fmt.Errorf("%w\n  The control database %s is damaged and was not used. Stop here and restore it from a backup"+
		" (copy the backup over %s), then start again.", err, path, path)
}

// DamagedJournal returns err, and when it is boltfile.ErrDamaged wraps it
// with how to save what can be read of the journal at path, in the data
// directory dataDir, and recover.
func DamagedJournal(err error, path, dataDir string) error {
	if !errors.Is(err, boltfile.ErrDamaged) {
		return err
	}
	return fmt.Errorf("%w\n  The journal %s is damaged and was not used. Save what can still be read with\n"+
		"    switchback journal export --data %s > journal.jsonl\n"+
		"  then restore the journal from a backup, or move it aside and start with --init to begin an empty one.",
		err, path, dataDir)
}
