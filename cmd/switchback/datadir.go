package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/switchbackhq/switchback/internal/boltfile"
)

// checkStoresNotLost refuses to start when a store is empty (missing or
// 0 bytes) while the data directory shows that data existed: bbolt would
// silently create a fresh file, and the acknowledged events, the dedup
// history or the partners would be gone without a word. evidence lists
// files that exist only once a store has held data (the other stores are
// evidence too). init says that an empty store is intended.
func checkStoresNotLost(init bool, stores, evidence []string) error {
	if init {
		return nil
	}
	var empty, held []string
	for _, s := range stores {
		if fileSize(s) > 0 {
			held = append(held, s)
		} else {
			empty = append(empty, s)
		}
	}
	for _, e := range evidence {
		if fileSize(e) > 0 {
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

// fileSize is the size of the file at path, 0 when there is none.
func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// damagedControlDB explains how to recover from a damaged control database.
func damagedControlDB(err error, path string) error {
	if !errors.Is(err, boltfile.ErrDamaged) {
		return err
	}
	return fmt.Errorf("%w\n  The control database %s is damaged and was not used. Stop here and restore it from a backup"+
		" (copy the backup over %s), then start again.", err, path, path)
}

// damagedJournal explains how to recover from a damaged journal.
func damagedJournal(err error, path, dataDir string) error {
	if !errors.Is(err, boltfile.ErrDamaged) {
		return err
	}
	return fmt.Errorf("%w\n  The journal %s is damaged and was not used. Save what can still be read with\n"+
		"    switchback journal export --data %s > journal.jsonl\n"+
		"  then restore the journal from a backup, or move it aside and start with --init to begin an empty one.",
		err, path, dataDir)
}
