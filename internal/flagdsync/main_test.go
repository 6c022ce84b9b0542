package flagdsync_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// stream must end when its client leaves or the server stops. flagd's Go
// provider (v0.6.0) leaves one goroutine per provider after Shutdown: it
// ranges over an event channel that its service never closes.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/open-feature/go-sdk-contrib/providers/flagd/pkg.(*Provider).handleEvents"))
}
