package bolt

import (
	"encoding/binary"
)

// The reports a router's counts came in are recorded in one more bucket,
// written in the transaction that adds their counts:
//
//	reports  router id 0 journal epoch → 8-byte big-endian seq of the last report applied
var bucketReports = []byte("reports")

// AppliedReport returns the seq of the last report applied from router's
// journal epoch, 0 if none.
func (t *tx) AppliedReport(router, epoch string) (uint64, error) {
	b := t.Bucket(bucketReports)
	if b == nil {
		return 0, nil
	}
	if v := b.Get(join([]byte(router), []byte(epoch))); len(v) == 8 {
		return binary.BigEndian.Uint64(v), nil
	}
	return 0, nil
}

// PutAppliedReport records seq as the last report applied from router's
// journal epoch.
func (t *tx) PutAppliedReport(router, epoch string, seq uint64) error {
	b, err := t.CreateBucketIfNotExists(bucketReports)
	if err != nil {
		return err
	}
	return b.Put(join([]byte(router), []byte(epoch)), u64(seq))
}
