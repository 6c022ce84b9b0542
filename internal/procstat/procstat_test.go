package procstat

import (
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	// A real line (a shell), with utime 1234 and stime 56.
	const real = "4242 (bash) S 4200 4242 4242 34816 4300 4194304 2345 6789 1 0 1234 56 7 8 20 0 1 0 123456 9437184 1024 18446744073709551615 1 1 0 0 0 0 65536 3670020 1266777851 0 0 0 17 1 0 0 0 0 0"
	tests := []struct {
		name string
		in   string
		want uint64
		err  bool
	}{
		{"real line", real, 1234 + 56, false},
		{"name with spaces and parentheses", "7 (a b) (c)) R 1 7 7 0 -1 0 0 0 0 0 10 20 0 0", 30, false},
		{"trailing newline", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0\n", 7, false},
		{"zero", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 0 0", 0, false},
		{"empty", "", 0, true},
		{"no command name", "7 x R 1 7 7 0 -1 0 0 0 0 0 3 4", 0, true},
		{"cut before stime", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 3", 0, true},
		{"not a number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 3 -4", 0, true},
		{"closing parenthesis first", "7 )x( R 1 7 7 0 -1 0 0 0 0 0 3 4", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.err {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("Parse(%q) = %d, %v; want ErrFormat", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestAuxvValue(t *testing.T) {
	if strconv.IntSize != 64 {
		t.Skip("the vectors below are of 64-bit words")
	}
	vec := func(pairs ...uint64) []byte {
		var b []byte
		for _, p := range pairs {
			b = binary.NativeEndian.AppendUint64(b, p)
		}
		return b
	}
	tests := []struct {
		name string
		auxv []byte
		want uint64
	}{
		{"present", vec(6, 4096, 17, 100, 0, 0), 100},
		{"after AT_NULL", vec(6, 4096, 0, 0, 17, 250), 0},
		{"absent", vec(6, 4096, 0, 0), 0},
		{"cut short", vec(6, 4096, 17)[:20], 0},
		{"empty", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := auxvValue(tt.auxv, atClockTick); got != tt.want {
				t.Errorf("auxvValue = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestCPUOfThisProcess reads this process's own line: it must parse and
// must not go backwards while the test spins.
func TestCPUOfThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/PID/stat is Linux's")
	}
	before, err := CPU(0)
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(30 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after < before {
		t.Errorf("CPU went from %s to %s", before, after)
	}
	if hz := ClockTicks(); hz != 100 {
		t.Logf("clock ticks per second here: %d", hz)
	}
}
