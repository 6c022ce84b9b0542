package etcdstore

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchbackhq/switchback/internal/domain"
)

// StageBuckets is how many keys hold a migration's stages: a partner's
// stage is in bucket fnv32a(partner id) mod StageBuckets. It bounds what
// a change of any number of stages costs in one transaction (a compare
// and a write per bucket), and is part of the schema: changing it moves
// every partner to another key.
const StageBuckets = 64

// stageRecord is a partner's stage as kept in its bucket, keyed there by
// the partner id.
type stageRecord struct {
	Stage domain.Stage `json:"stage"`
	Since time.Time    `json:"since"`
}

// stageBucket returns the bucket of partner's stages.
func stageBucket(partner string) string {
	h := fnv.New32a()
	h.Write([]byte(partner))
	return fmt.Sprintf("%02d", h.Sum32()%StageBuckets)
}

func (s *Store) stageKey(migration, partner string) string {
	return s.key("stages", migration, stageBucket(partner))
}

func decodeBucket(key, v string) (map[string]stageRecord, error) {
	b := map[string]stageRecord{}
	if v == "" {
		return b, nil
	}
	if err := json.Unmarshal([]byte(v), &b); err != nil {
		return nil, fmt.Errorf("decode %q: %w", key, err)
	}
	return b, nil
}

// PutStage sets ps in its bucket. The first PutStage of a migration in a
// transaction reads all the migration's buckets in one range request; a
// bucket changed is written once, at commit, with every stage the
// transaction put in it, and the commit is conditional on that bucket
// being unchanged since the read.
func (t *tx) PutStage(migration string, ps domain.PartnerStage) error {
	key := t.s.stageKey(migration, ps.Partner)
	b, ok := t.stages[key]
	if !ok {
		read, err := t.stageBuckets(migration)
		if err != nil {
			return err
		}
		kv := read[key]
		if b, err = decodeBucket(key, kv.value); err != nil {
			return err
		}
		t.reads[key] = kv.rev
		t.stages[key] = b
	}
	b[ps.Partner] = stageRecord{Stage: ps.Stage, Since: ps.Since}
	return nil
}

// stageBuckets returns the buckets of migration's stages as of the
// transaction's revision, reading them on first use.
func (t *tx) stageBuckets(migration string) (map[string]valueAt, error) {
	prefix := t.s.key("stages", migration) + "/"
	if read, ok := t.stageReads[prefix]; ok {
		return read, nil
	}
	resp, err := t.s.client.Get(t.ctx, prefix, append(t.revOpts(), clientv3.WithPrefix())...)
	if err != nil {
		return nil, err
	}
	t.at(resp.Header.Revision)
	read := make(map[string]valueAt, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		read[string(kv.Key)] = valueAt{string(kv.Value), kv.ModRevision}
	}
	t.stageReads[prefix] = read
	return read, nil
}

// valueAt is a key's value and mod revision as read.
type valueAt struct {
	value string
	rev   int64
}

// flushStages adds the buckets PutStage changed to the writes.
func (t *tx) flushStages() error {
	for key, b := range t.stages {
		if err := t.putJSON(key, b); err != nil {
			return err
		}
	}
	return nil
}

// bucketStages appends the stages of one bucket's value to out.
func bucketStages(key string, v []byte, out []domain.PartnerStage) ([]domain.PartnerStage, error) {
	b, err := decodeBucket(key, string(v))
	if err != nil {
		return out, err
	}
	for p, r := range b {
		out = append(out, domain.PartnerStage{Partner: p, Stage: r.Stage, Since: r.Since})
	}
	return out, nil
}

func sortStages(st []domain.PartnerStage) {
	slices.SortFunc(st, func(a, b domain.PartnerStage) int { return cmp.Compare(a.Partner, b.Partner) })
}
