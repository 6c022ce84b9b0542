package control_test

import (
	"context"
	"testing"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// racingStore is a store whose every write loses a race to another
// replica, as a shared store reports it.
type racingStore struct{ control.Store }

func (racingStore) Update(context.Context, func(control.Tx) error) error {
	return domain.Errorf(domain.CodeConflict, "another replica changed it first; try again")
}

// A write that loses a race in a shared store is a conflict for the caller
// to retry (409), not an internal error.
func TestStoreConflictIsAConflict(t *testing.T) {
	svc, err := control.New(ctx, racingStore{bolttest.Open(t)}, control.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = svc.PutMigration(ctx, admin, migration("m"))
	wantCode(t, err, domain.CodeConflict)
}
