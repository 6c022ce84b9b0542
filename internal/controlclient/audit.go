package controlclient

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/domain"
)

// Verified is what VerifyAudit checked.
type Verified struct {
	Entries   int    // entries whose chain was recomputed
	Seq       uint64 // the head's sequence number, 0 for an empty log
	Hash      string // the head's hash
	Witnessed int    // witnessed heads the log was found to hold
}

// VerifyAudit pages through the whole audit log and checks its hash chain,
// and that it holds every head witnessed by the files at witnesses (a
// router's snapshot file, or a head printed by "audit head"). It returns
// the first break the audit.Verifier finds, an unreadable witness file, or
// a witness of another store than the service's (its store was replaced or
// reset since).
func (c *Client) VerifyAudit(ctx context.Context, witnesses []string) (Verified, error) {
	var res Verified
	v := audit.NewVerifier(domain.AuditEntry{})
	if len(witnesses) > 0 {
		head, err := c.AuditHead(ctx)
		if err != nil {
			return res, err
		}
		for _, path := range witnesses {
			ws, err := readWitnesses(path, head.StoreID)
			if err != nil {
				return res, err
			}
			v.Expect(ws...)
			res.Witnessed += len(ws)
		}
	}
	for {
		page, err := c.Audit(ctx, res.Seq, 1000)
		if err != nil {
			return res, err
		}
		if err := v.Check(page); err != nil {
			return res, err
		}
		if len(page) == 0 {
			break
		}
		res.Seq, res.Hash = page[len(page)-1].Seq, page[len(page)-1].Hash
	}
	if err := v.Finish(); err != nil {
		return res, err
	}
	res.Entries = v.Checked
	return res, nil
}

// readWitnesses reads the audit heads of a witness file: a router's
// snapshot file, or a head printed by "audit head". Heads of another store
// than storeID are an error: that store's log is not the one verified (a
// store reset or replaced cannot pass for the one the witness saw).
func readWitnesses(path, storeID string) ([]audit.Witness, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	var probe struct {
		Schema int `json:"schema"`
		AuditHead
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("witness %s is neither a router's snapshot file nor a head from \"audit head\": %w", path, err)
	}
	var heads []flags.AuditHead
	switch {
	case probe.Schema != 0:
		if heads, err = flags.ReadAuditHeads(path); err != nil {
			return nil, fmt.Errorf("witness: %w", err)
		}
	case probe.Seq > 0 && probe.Hash != "":
		heads = []flags.AuditHead{{StoreID: probe.StoreID, Seq: probe.Seq, Hash: probe.Hash}}
	default:
		return nil, fmt.Errorf("witness %s is neither a router's snapshot file nor a head from \"audit head\"", path)
	}
	ws := make([]audit.Witness, 0, len(heads))
	for _, h := range heads {
		if h.StoreID != "" && h.StoreID != storeID {
			return nil, fmt.Errorf("witness %s saw audit entry %d of store %s, but the control service's store is %s: it was replaced or reset since",
				path, h.Seq, h.StoreID, storeID)
		}
		ws = append(ws, audit.Witness{Seq: h.Seq, Hash: h.Hash, Source: path})
	}
	return ws, nil
}
