package wire_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The agreement test runs a real flags provider: it must stop whole.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
