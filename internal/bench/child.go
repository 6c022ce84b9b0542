package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"
)

// child is a process of the switchback binary that a benchmark started,
// so that its CPU time is its own: a router, a pipeline, a bare server, a
// group of flags providers.
type child struct {
	name   string
	cmd    *exec.Cmd
	stderr *tail
	done   chan struct{} // closed when the process has exited
	err    error         // its exit, set before done closes
}

// childStart is how to start one child.
type childStart struct {
	name string // for errors: "router", "legacy pipeline"
	bin  string
	args []string
	// env is added to the benchmark's environment, from which every
	// SWITCHBACK_ variable is taken out first, so that the user's own
	// settings cannot change what is measured.
	env []string
	// ready is matched against each line of the child's stdout until it
	// matches; its first group is what start returns (an address).
	ready *regexp.Regexp
	// onLine, if set, takes every stdout line after the ready one, in the
	// reading goroutine: keep it quick.
	onLine func(string)
}

// startChild starts s and waits, at most 30 s, for its ready line. It
// returns the child and the ready line's first group, or the child's
// error with the end of its stderr.
func startChild(ctx context.Context, s childStart) (*child, string, error) {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(cleanEnv(os.Environ()), s.env...)
	setDeathSignal(cmd)
	c := &child{name: s.name, cmd: cmd, stderr: &tail{max: 4 << 10}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start the %s (%s): %w", s.name, s.bin, err)
	}
	ready := make(chan string, 1)
	var reading sync.WaitGroup
	reading.Go(func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		waiting := true
		for sc.Scan() {
			line := sc.Text()
			switch {
			case waiting:
				if m := s.ready.FindStringSubmatch(line); m != nil {
					waiting = false
					ready <- m[min(1, len(m)-1)]
				}
			case s.onLine != nil:
				s.onLine(line)
			}
		}
		io.Copy(io.Discard, out)
	})
	go func() {
		reading.Wait() // Wait closes the pipe: read it to the end first
		c.err = cmd.Wait()
		close(c.done)
	}()
	select {
	case got := <-ready:
		return c, got, nil
	case <-c.done:
		return nil, "", fmt.Errorf("the %s exited before it was ready (%v): %s", s.name, c.err, c.stderr)
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	c.kill()
	return nil, "", fmt.Errorf("the %s was not ready within 30s: %s", s.name, c.stderr)
}

// pid is the child's process id, for procstat.
func (c *child) pid() int { return c.cmd.Process.Pid }

// stop asks the child to end as Ctrl-C does, waits for it up to 10 s,
// then kills it. It returns an error if the child had to be killed or did
// not end cleanly, with the end of its stderr.
func (c *child) stop() error {
	select {
	case <-c.done:
	default:
		c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			c.kill()
			return fmt.Errorf("the %s did not stop within 10s of an interrupt: %s", c.name, c.stderr)
		}
	}
	if c.err != nil {
		return fmt.Errorf("the %s ended with %v: %s", c.name, c.err, c.stderr)
	}
	return nil
}

// kill ends the child at once and waits for it.
func (c *child) kill() {
	c.cmd.Process.Kill()
	<-c.done
}

// exited reports whether the child has ended, and how.
func (c *child) exited() (bool, error) {
	select {
	case <-c.done:
		return true, c.err
	default:
		return false, nil
	}
}

// cleanEnv is env without SWITCHBACK_ variables.
func cleanEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "SWITCHBACK_") {
			out = append(out, kv)
		}
	}
	return out
}

// tail keeps the last max bytes written to it: the end of a child's
// stderr, for errors.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := strings.TrimSpace(string(t.b)); s != "" {
		return s
	}
	return "(nothing on stderr)"
}

// errNotLinux is the separate measurements' error elsewhere: they read
// each process's CPU from /proc.
var errNotLinux = errors.New("measuring each process's CPU needs Linux's /proc")
