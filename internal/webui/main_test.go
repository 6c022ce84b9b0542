package webui_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: the UI
// starts none, and the browser tests must stop Chromium and its readers.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
