package httpapi_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: snapshot
// streams must end when their client leaves or the API closes.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
