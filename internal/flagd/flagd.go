package flagd

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/domain"
)

// Flag keys, variants and metadata as flagd clients see them.
const (
	// ShadowSuffix ends the key of a migration's companion flag.
	ShadowSuffix = ":shadow"
	// None is the KEY:shadow variant of a partner without a dry-run.
	None = "none"
	// FlagSetID names switchback's flag set in a flagd daemon that holds
	// several sources (its selector "flagSetId=switchback").
	FlagSetID = "switchback"
	// SchemaURL is the schema the configuration follows.
	SchemaURL = "https://flagd.dev/schema/v0/flags.json"
)

// Doc is a flag configuration in flagd's format.
type Doc struct {
	JSON []byte
	// ETag is a strong HTTP entity tag of JSON: a hash of its bytes, so
	// that it changes with everything the document depends on (a store
	// reset that reuses a version number included).
	ETag string
}

// CheckSelector returns an invalid_argument error when selector can name
// no migration: it is empty (every migration) or a migration key.
func CheckSelector(selector string) error {
	if selector != "" && !domain.ValidID(selector) {
		return domain.Errorf(domain.CodeInvalid, "selector %q names no migration: give a migration key, or none for every migration", selector)
	}
	return nil
}

// Encode returns the flag configuration of s: the flags of every
// migration when selector is "", else those of the migration it names
// (none while no migration has that key, so that a router started before
// its migration gets it when it is created). It returns CheckSelector's
// error, a store_unavailable error for a nil snapshot (a control service
// that has not loaded its store), or an internal error if a stage record
// names a partner id that no valid id could be (the control service never
// stores one).
func Encode(s *flags.Snapshot, selector string) (Doc, error) {
	if err := CheckSelector(selector); err != nil {
		return Doc{}, err
	}
	if s == nil {
		return Doc{}, domain.Errorf(domain.CodeStoreUnavailable, "the control service has not loaded its store yet: try again")
	}
	cfg := config{Schema: SchemaURL, Flags: map[string]flag{},
		Metadata: setMetadata{FlagSetID: FlagSetID, Version: strconv.FormatUint(s.Version, 10), StoreID: s.StoreID}}
	for key, m := range s.Migrations {
		if m == nil || selector != "" && key != selector {
			continue
		}
		primary, shadow, err := migrationFlags(key, m)
		if err != nil {
			return Doc{}, err
		}
		cfg.Flags[key], cfg.Flags[key+ShadowSuffix] = primary, shadow
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return Doc{}, domain.Internal("encode flagd flags", err)
	}
	sum := sha256.Sum256(b)
	return Doc{JSON: b, ETag: `"` + hex.EncodeToString(sum[:16]) + `"`}, nil
}

type config struct {
	Schema   string          `json:"$schema"`
	Metadata setMetadata     `json:"metadata"`
	Flags    map[string]flag `json:"flags"`
}

// setMetadata is the flag set's metadata: flagd adds it to every flag's
// evaluation metadata.
type setMetadata struct {
	FlagSetID string `json:"flagSetId"`
	Version   string `json:"version"`
	StoreID   string `json:"storeId,omitempty"`
}

type flag struct {
	State          string            `json:"state"`
	Variants       map[string]string `json:"variants"`
	DefaultVariant string            `json:"defaultVariant"`
	Targeting      any               `json:"targeting,omitempty"`
	Metadata       flagMetadata      `json:"metadata"`
}

type flagMetadata struct {
	Migration string `json:"migration"`
	Reverted  bool   `json:"reverted"`
}

// migrationFlags returns a migration's two flags.
func migrationFlags(key string, m *flags.Migration) (primary, shadow flag, err error) {
	meta := flagMetadata{Migration: key, Reverted: m.Reverted}
	primary = flag{State: "ENABLED", DefaultVariant: flags.Legacy, Metadata: meta,
		Variants: map[string]string{flags.Legacy: flags.Legacy, flags.New: flags.New}}
	shadow = flag{State: "ENABLED", DefaultVariant: None, Metadata: meta,
		Variants: map[string]string{flags.Legacy: flags.Legacy, flags.New: flags.New, None: None}}
	if m.Reverted {
		return primary, shadow, nil
	}
	// Each partner goes where Evaluate sends it: value new at new and
	// done; dry-run new at shadow, legacy at new. Legacy, unknown stages
	// and unknown partners are the defaults.
	var toNew, dryNew, dryLegacy []string
	for p, stage := range m.Stages {
		if !domain.ValidID(p) {
			return flag{}, flag{}, domain.Internal("encode flagd flags", fmt.Errorf("stage record of invalid partner id %q", p))
		}
		switch stage {
		case flags.StageShadow:
			dryNew = append(dryNew, p)
		case flags.StageNew:
			toNew, dryLegacy = append(toNew, p), append(dryLegacy, p)
		case flags.StageDone:
			toNew = append(toNew, p)
		}
	}
	primary.Targeting = targeting(rule{flags.New, toNew})
	shadow.Targeting = targeting(rule{flags.New, dryNew}, rule{flags.Legacy, dryLegacy})
	return primary, shadow, nil
}

// rule answers variant for the partners listed.
type rule struct {
	variant  string
	partners []string
}

// targeting returns the JSONLogic rule answering each rule's variant for
// its partners and null (the default variant) for everyone else, or nil
// (no targeting) when no rule lists a partner:
//
//	{"if": [{"in": [",", {"var": "targetingKey"}]}, null,
//	        {"in": [{"cat": [",", {"var": "targetingKey"}, ","]}, ",p1,p2,"]}, "new",
//	        …,
//	        null]}
//
// See the package documentation for why the lists are strings.
func targeting(rules ...rule) any {
	key := map[string]any{"var": "targetingKey"}
	clauses := []any{map[string]any{"in": []any{",", key}}, nil}
	for _, r := range rules {
		if len(r.partners) == 0 {
			continue
		}
		slices.Sort(r.partners)
		list := "," + strings.Join(r.partners, ",") + ","
		clauses = append(clauses, map[string]any{"in": []any{map[string]any{"cat": []any{",", key, ","}}, list}}, r.variant)
	}
	if len(clauses) == 2 {
		return nil
	}
	return map[string]any{"if": append(clauses, nil)}
}

// Cache encodes each selection of a snapshot once, however many clients
// ask: it keeps the documents of the last snapshot it was asked about.
// Snapshots are immutable, so a document is keyed by the snapshot's
// pointer and the selector, everything it depends on. The zero Cache is
// ready to use.
type Cache struct {
	mu   sync.Mutex
	snap *flags.Snapshot
	docs map[string]Doc
}

// Get returns Encode(s, selector), encoded once per snapshot and
// selector. Only selectors that name a migration of s (or none) are kept,
// so that clients cannot grow the cache with keys of their own. Its errors
// are Encode's.
func (c *Cache) Get(s *flags.Snapshot, selector string) (Doc, error) {
	if s == nil {
		return Encode(s, selector)
	}
	if _, ok := s.Migrations[selector]; selector != "" && !ok {
		return Encode(s, selector)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap != s {
		c.snap, c.docs = s, map[string]Doc{}
	}
	if d, ok := c.docs[selector]; ok {
		return d, nil
	}
	// Encoding under the lock makes the clients that ask for the same
	// new snapshot at once wait for one encoding instead of each doing
	// its own.
	d, err := Encode(s, selector)
	if err == nil {
		c.docs[selector] = d
	}
	return d, err
}

// SetMetadata returns the flag set's metadata of s, as Encode writes it.
func SetMetadata(s *flags.Snapshot) map[string]any {
	m := map[string]any{"flagSetId": FlagSetID, "version": strconv.FormatUint(s.Version, 10)}
	if s.StoreID != "" {
		m["storeId"] = s.StoreID
	}
	return m
}
