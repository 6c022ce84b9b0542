package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

var _ control.Shared = (*Store)(nil)

// headTimeout bounds Head: a replica that cannot read one key in this
// time treats etcd as unreachable.
const headTimeout = 2 * time.Second

// Head returns the seq of the last audit entry, 0 for an empty log. It
// reads from the etcd leader (a linearizable read), so a replica cut off
// from the cluster's majority finds out.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, headTimeout)
	defer cancel()
	resp, err := s.client.Get(ctx, s.key("meta", "auditHead"))
	if err != nil {
		return 0, unavailable(err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	seq, err := strconv.ParseUint(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("audit head %q is unreadable", resp.Kvs[0].Value)
	}
	return seq, nil
}

// Changes watches the store's meta keys, which every change writes (the
// audit head, the version), and signals on the returned channel after each
// batch of events; a signal waiting to be taken stands for all that came
// after it. The watch is restarted if etcd ends it (a compaction, a lost
// leader), with a signal, since changes may have been missed meanwhile.
func (s *Store) Changes(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	signal := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			// WithRequireLeader ends the watch when the member this
			// client talks to loses the cluster's leader, instead of
			// going quiet.
			watchCtx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			for resp := range s.client.Watch(watchCtx, s.prefix+"meta/", clientv3.WithPrefix()) {
				if resp.Err() != nil {
					break
				}
				signal()
			}
			cancel() // the client keeps a watch until its context ends
			signal()
			if err := sleep(ctx, 200*time.Millisecond); err != nil {
				return
			}
		}
	}()
	return out
}

// unavailable marks an error of the etcd client that says the cluster
// cannot be reached or has no leader as the store being unavailable: the
// caller may try again later, on this replica or another. Other errors
// pass unchanged.
func unavailable(err error) error {
	if err == nil || !unreachable(err) {
		return err
	}
	return &domain.Error{Code: domain.CodeStoreUnavailable, RetryAfter: 2 * time.Second,
		Message: "the control store (etcd) cannot be reached: try again", Err: err}
}

func unreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return false // the store's or the caller's own verdict
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable || ee.Code() == codes.DeadlineExceeded
	}
	if st, ok := status.FromError(err); ok {
		return st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded
	}
	return false
}

// Every call to etcd is bounded, so that a request to a replica cut off
// from the cluster answers store_unavailable instead of hanging: the
// client itself waits as long as its context allows.
const (
	readTimeout  = 5 * time.Second
	writeTimeout = 10 * time.Second // several attempts with their waits
)

// Update runs fn in one write transaction; see update.
func (s *Store) Update(ctx context.Context, fn func(control.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return unavailable(s.update(ctx, fn))
}

// Load returns everything stored but the audit log and the statistics, as
// of one revision.
func (s *Store) Load(ctx context.Context) (domain.Data, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	d, err := s.load(ctx)
	return d, unavailable(err)
}

// AuditLog returns up to limit entries with seq > after, in seq order.
func (s *Store) AuditLog(ctx context.Context, after uint64, limit int) ([]domain.AuditEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	out, err := s.auditLog(ctx, after, limit)
	return out, unavailable(err)
}

// StageRows returns the rows of the stint that began at since, as of one
// revision.
func (s *Store) StageRows(ctx context.Context, migration, partner string, stage domain.Stage, since time.Time) (domain.StageRows, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	out, err := s.stageRows(ctx, migration, partner, stage, since)
	return out, unavailable(err)
}

// Mismatches returns up to limit of a partner's mismatches at or after
// since, newest first.
func (s *Store) Mismatches(ctx context.Context, migration, partner string, since time.Time, limit int) ([]domain.Mismatch, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	out, err := s.mismatches(ctx, migration, partner, since, limit)
	return out, unavailable(err)
}
