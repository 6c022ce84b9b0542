package psa

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestMain fails the package if a test leaves a goroutine behind: a key
// fetch must end with its context, and a KeyCache starts none of its own.
// (A standard-library stand-in for goleak, which this package's tests do
// not import.) The check is skipped while fuzzing, whose workers keep
// goroutines of their own.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 && !fuzzing() {
		if n, stacks := settle(before); n > before {
			fmt.Fprintf(os.Stderr, "leaked goroutines: %d before the tests, %d after\n%s\n", before, n, stacks)
			code = 1
		}
	}
	os.Exit(code)
}

func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// settle waits up to 5 s for the goroutine count to fall to want, and
// returns the count and, if it did not, every goroutine's stack.
func settle(want int) (int, string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return n, ""
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			return n, string(buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
