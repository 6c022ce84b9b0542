package boltstore

import (
	"encoding/binary"
)

// AppliedReport returns the seq of the last report applied from router's
// journal epoch, 0 if none.
func (t *tx) AppliedReport(router, epoch string) (uint64, error) {
	if v := t.Bucket(bucketReports).Get(join([]byte(router), []byte(epoch))); len(v) == 8 {
		return binary.BigEndian.Uint64(v), nil
	}
	return 0, nil
}

// PutAppliedReport records seq as the last report applied from router's
// journal epoch.
func (t *tx) PutAppliedReport(router, epoch string, seq uint64) error {
	return t.Bucket(bucketReports).Put(join([]byte(router), []byte(epoch)), u64(seq))
}
