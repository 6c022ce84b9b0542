package etcdstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

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
			w := s.client.Watch(clientv3.WithRequireLeader(ctx), s.prefix+"meta/", clientv3.WithPrefix())
			for resp := range w {
				if resp.Err() != nil {
					break
				}
				signal()
			}
			signal()
			if err := sleep(ctx, 200*time.Millisecond); err != nil {
				return
			}
		}
	}()
	return out
}

// unavailable marks an error of the etcd client as the store being
// unreachable: the caller may try again later.
func unavailable(err error) error {
	if err == nil || domain.ErrorCode(err) != domain.CodeInternal {
		return err
	}
	return &domain.Error{Code: domain.CodeStoreUnavailable, RetryAfter: 2 * time.Second,
		Message: "the control store (etcd) cannot be reached; nothing was changed: try again", Err: err}
}
