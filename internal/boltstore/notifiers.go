package boltstore

import (
	bbolt "go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/internal/domain"
)

// bucketNotifiers holds the notification targets: name → JSON
// domain.Notifier, its secret in plain text like a partner's (the file is
// the secret's protection: mode 0600 in a 0700 data dir). Open creates it
// in a file of an older release; a file opened read only without it reads
// no targets.
var bucketNotifiers = []byte("notifiers")

func (t *tx) PutNotifier(n domain.Notifier) error {
	b, err := t.CreateBucketIfNotExists(bucketNotifiers)
	if err != nil {
		return err
	}
	return putJSON(b, []byte(n.Name), n)
}

func (t *tx) DeleteNotifier(name string) error {
	b := t.Bucket(bucketNotifiers)
	if b == nil {
		return nil
	}
	return b.Delete([]byte(name))
}

// loadNotifiers decodes the targets, if the file has their bucket.
func loadNotifiers(tx *bbolt.Tx, out *[]domain.Notifier) error {
	return each(tx.Bucket(bucketNotifiers), out)
}
