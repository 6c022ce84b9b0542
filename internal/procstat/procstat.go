package procstat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ErrFormat is returned by Parse for text that is not a /proc/PID/stat line.
var ErrFormat = errors.New("procstat: not a /proc/PID/stat line")

// The fields of /proc/PID/stat after the command name's closing
// parenthesis, counted from 0 at the state field (proc(5) numbers them
// from 1 at the pid: state is 3, utime 14, stime 15).
const (
	utimeField = 14 - 3
	stimeField = 15 - 3
)

// Parse returns utime+stime, in clock ticks, from the contents of
// /proc/PID/stat: the CPU the process has spent in user and in system mode,
// all its threads together (children not included). The command name is
// skipped up to its last ')', since it may itself hold spaces and
// parentheses. It returns ErrFormat, wrapped, for anything else.
func Parse(stat []byte) (ticks uint64, err error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 || bytes.IndexByte(stat, '(') < 0 || bytes.IndexByte(stat, '(') > end {
		return 0, fmt.Errorf("%w: no (command name)", ErrFormat)
	}
	fields := bytes.Fields(stat[end+1:])
	if len(fields) <= stimeField {
		return 0, fmt.Errorf("%w: %d fields after the command name, want at least %d", ErrFormat, len(fields), stimeField+1)
	}
	for _, i := range []int{utimeField, stimeField} {
		n, err := strconv.ParseUint(string(fields[i]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: field %d is %q", ErrFormat, i+3, fields[i])
		}
		ticks += n
	}
	return ticks, nil
}

// CPU returns the CPU time process pid has used so far, all threads, user
// and system, read from /proc/PID/stat (pid 0 reads /proc/self/stat). Its
// resolution is one clock tick (10 ms): measure windows of seconds. It
// returns the file's error (the process is gone, or this is not Linux) or
// Parse's.
func CPU(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	ticks, err := Parse(b)
	if err != nil {
		return 0, err
	}
	return time.Duration(ticks) * time.Second / time.Duration(ClockTicks()), nil
}

// atClockTick is AT_CLKTCK, the auxiliary vector entry that carries the
// kernel's USER_HZ to the C library's sysconf(_SC_CLK_TCK).
const atClockTick = 17

// ClockTicks returns the clock ticks per second that /proc/PID/stat counts
// in: sysconf(_SC_CLK_TCK), which the C library reads from the auxiliary
// vector the kernel hands every process. It reads that vector itself
// (/proc/self/auxv), so that no C is needed, and returns 100, USER_HZ on
// every Linux architecture Go runs on, if it cannot.
func ClockTicks() uint64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	if hz := auxvValue(b, atClockTick); hz > 0 {
		return hz
	}
	return 100
}

// auxvValue returns the value of the entry of type typ in an auxiliary
// vector of native-endian, pointer-sized (type, value) pairs, 0 if none.
func auxvValue(auxv []byte, typ uint64) uint64 {
	const word = strconv.IntSize / 8 // bytes in a pointer (and an int)
	for len(auxv) >= 2*word {
		var t, v uint64
		if word == 8 {
			t, v = binary.NativeEndian.Uint64(auxv), binary.NativeEndian.Uint64(auxv[8:])
		} else {
			t, v = uint64(binary.NativeEndian.Uint32(auxv)), uint64(binary.NativeEndian.Uint32(auxv[4:]))
		}
		if t == typ {
			return v
		}
		if t == 0 { // AT_NULL ends the vector
			return 0
		}
		auxv = auxv[2*word:]
	}
	return 0
}
