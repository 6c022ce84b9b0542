package flags

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// snapshotFileSchema is the version of the snapshot file's wrapper:
//
//	{"schema": 1, "snapshot": <the snapshot's JSON as the stream sent it>,
//	 "heads": [{"storeId": "…", "seq": N, "hash": "…"}, …]}
//
// heads, the audit heads the provider witnessed (see AuditHeads), may be
// absent: files written before it are read as holding none.
// A file of another schema is ignored, never guessed at: a router that was
// downgraded after a newer one wrote the file starts as if it had none.
const snapshotFileSchema = 1

type snapshotFile struct {
	Schema   int             `json:"schema"`
	Snapshot json.RawMessage `json:"snapshot"`
	Heads    []AuditHead     `json:"heads"`
}

// readSnapshotFile returns the snapshot kept at path and the audit heads
// witnessed. Its errors wrap fs.ErrNotExist when there is no file; any
// other error means the file cannot be used (unreadable, truncated,
// corrupt, another schema).
func readSnapshotFile(path string) (*Snapshot, []byte, []AuditHead, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, err
	}
	var f snapshotFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, nil, nil, fmt.Errorf("decode: %w", err)
	}
	switch {
	case f.Schema > snapshotFileSchema:
		return nil, nil, nil, fmt.Errorf("schema %d is newer than this provider's %d", f.Schema, snapshotFileSchema)
	case f.Schema != snapshotFileSchema:
		return nil, nil, nil, fmt.Errorf("schema %d is not %d", f.Schema, snapshotFileSchema)
	}
	s, err := decodeSnapshot(f.Snapshot)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("decode snapshot: %w", err)
	}
	return s, f.Snapshot, f.Heads, nil
}

// ReadAuditHeads returns the audit heads kept in a provider's snapshot file
// (Options.SnapshotFile): those it witnessed, and the head of the snapshot
// it holds, each with its store id. "switchback audit verify --witness"
// checks them against the control service's audit log.
func ReadAuditHeads(path string) ([]AuditHead, error) {
	s, _, heads, err := readSnapshotFile(path)
	if err != nil {
		return nil, fmt.Errorf("flags: snapshot file %s: %w", path, err)
	}
	if s.Audit.Seq > 0 {
		heads = keepHead(heads, AuditHead{StoreID: s.StoreID, Seq: s.Audit.Seq, Hash: s.Audit.Hash})
	}
	return heads, nil
}

// writeSnapshotFile replaces the file at path with raw, the snapshot's JSON,
// atomically: a temporary file in the same directory, synced, renamed over
// path, and the directory synced, so a crash leaves the old file or the new
// one, never a mix. The file's mode is 0600: a router's snapshot holds the
// partners' webhook secrets.
func writeSnapshotFile(path string, raw []byte, heads []AuditHead) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	hb, err := json.Marshal(heads)
	if err != nil {
		return err
	}
	// Written in pieces rather than marshalled: raw may weigh megabytes and
	// was valid JSON when the stream reader decoded it.
	for _, b := range [][]byte{[]byte(`{"schema":` + fmt.Sprint(snapshotFileSchema) + `,"snapshot":`), raw, []byte(`,"heads":`), hb, []byte("}\n")} {
		if _, err := tmp.Write(b); err != nil {
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be synced there; rename is durable enough
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// loadSnapshotFile loads Options.SnapshotFile into the provider if it holds
// no snapshot yet. A missing file is normal; an unusable one is logged and
// ignored.
func (p *Provider) loadSnapshotFile() {
	path := p.opts.SnapshotFile
	s, raw, heads, err := readSnapshotFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.log.Info("flags: no snapshot file yet", "path", path)
		return
	case err != nil:
		p.log.Warn("flags: ignoring unusable snapshot file", "path", path, "err", err)
		return
	}
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	if !p.cur.CompareAndSwap(nil, newHeld(s)) {
		return // the stream was quicker
	}
	p.heads = heads
	if s.Audit.Seq > 0 {
		p.heads = keepHead(p.heads, AuditHead{StoreID: s.StoreID, Seq: s.Audit.Seq, Hash: s.Audit.Hash})
	}
	if p.opts.OnSnapshot != nil {
		p.opts.OnSnapshot(s.Version, raw)
	}
	p.syncedOnce.Do(func() { close(p.synced) })
	p.log.Info("flags: snapshot loaded from file", "path", path, "version", s.Version)
}

// persist hands raw to the file writer and returns at once. Snapshots that
// come faster than the disk writes them coalesce to the latest.
func (p *Provider) persist(raw []byte, heads []AuditHead) {
	if p.opts.SnapshotFile == "" {
		return
	}
	p.pendingMu.Lock()
	p.pending, p.pendingHeads = raw, heads
	p.pendingMu.Unlock()
	select {
	case p.persistSig <- struct{}{}:
	default: // a write is already due; it takes the latest
	}
}

// persistLoop writes snapshots to Options.SnapshotFile until stop is
// closed, then writes the last one pending.
func (p *Provider) persistLoop(stop <-chan struct{}) {
	for {
		select {
		case <-p.persistSig:
			p.writePending()
		case <-stop:
			p.writePending()
			return
		}
	}
}

func (p *Provider) writePending() {
	p.pendingMu.Lock()
	raw, heads := p.pending, p.pendingHeads
	p.pending, p.pendingHeads = nil, nil
	p.pendingMu.Unlock()
	if raw == nil {
		return
	}
	if err := writeSnapshotFile(p.opts.SnapshotFile, raw, heads); err != nil {
		p.log.Warn("flags: could not write the snapshot file", "path", p.opts.SnapshotFile, "err", err)
		return
	}
	p.log.Debug("flags: snapshot file written", "path", p.opts.SnapshotFile, "bytes", len(raw))
}
