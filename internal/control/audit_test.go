package control_test

import (
	"testing"

	"github.com/switchbackhq/switchback/internal/domain"
)

func TestAuditLogLimit(t *testing.T) {
	e := newEnv(t, nil)
	for _, limit := range []int{0, -1, 1001} {
		if _, err := e.svc.AuditLog(ctx, 0, limit); domain.ErrorCode(err) != domain.CodeInvalid {
			t.Errorf("AuditLog(limit %d) = %v, want invalid_argument", limit, err)
		}
	}
	if got, err := e.svc.AuditLog(ctx, 0, 1000); err != nil || len(got) != 0 {
		t.Errorf("AuditLog(empty) = %v, %v", got, err)
	}
}
