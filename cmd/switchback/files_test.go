package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/datadir"
	"github.com/switchbackhq/switchback/internal/journal"
)

// dataDirWithData makes a data dir as a serve process leaves it after some
// use: the real binary creates the control db and 200 partners (the file
// grows well past 32 KiB), then the journal gets 3000 events as the
// router would have journaled them.
func dataDirWithData(t *testing.T, bin string) string {
	t.Helper()
	data, addr := t.TempDir(), freeAddr(t)
	proc := startBinary(t, bin, data, addr)
	for i := range 200 {
		id := fmt.Sprintf("partner-%03d", i)
		if got := call(t, "PUT", "http://"+addr+"/v1/partners/"+id, crashAdmin,
			map[string]any{"name": "Partner " + id + strings.Repeat(" of a long name", 4), "psa": "generic", "secret": crashSecret}, nil); got/100 != 2 {
			t.Fatalf("PUT partner %s = %d", id, got)
		}
	}
	if err := proc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	proc.Wait()
	j, err := journal.Open(filepath.Join(data, "ingress", journalFile), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var events []journal.Event
	for i := range 3000 {
		id := fmt.Sprintf("d-%05d", i)
		events = append(events, journal.Event{Partner: "partner-001", PSA: "generic", Type: "ticket", Action: "updated",
			EntityID: id, DeliveryID: id, ReceivedAt: time.Now().UTC(), Payload: json.RawMessage(`{"id":"` + id + `"}`)})
	}
	if _, err := j.Append(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"switchback.db", "ingress/journal.db"} {
		if n := datadir.FileSize(filepath.Join(data, f)); n <= 64<<10 {
			t.Fatalf("%s is %d bytes: too small to cut to 32 KiB", f, n)
		}
	}
	return data
}

// copyDir copies the regular files of src, one level of subdirectories
// deep, to a new temp dir.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// overwriteRandomPages writes seeded random bytes over n 4 KiB pages of
// the file, past its two meta pages.
func overwriteRandomPages(t *testing.T, path string, seed uint64, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(seed, seed^0x5eed))
	for range n {
		p := 2 + rnd.IntN(len(b)/4096-2)
		for i := p * 4096; i < (p+1)*4096; i++ {
			b[i] = byte(rnd.Uint32())
		}
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// runToExit runs the binary with args and returns its exit code and
// output; a process still running after 30 s (it started serving) is
// killed and reported as -1.
func runToExit(t *testing.T, bin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return -1, out.String(), errOut.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errOut.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

// A damaged or lost database stops serve and ingress before they listen:
// status 1, a message that names the file and the way back, and no Go
// panic.
func TestDamagedOrEmptyFilesStopTheServerWithAMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := binary(t)
	pristine := dataDirWithData(t, bin)
	truncate := func(size int64) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			if err := os.Truncate(path, size); err != nil {
				t.Fatal(err)
			}
		}
	}
	overwrite := func(seed uint64) func(t *testing.T, path string) {
		return func(t *testing.T, path string) { overwriteRandomPages(t, path, seed, 6) }
	}
	const db, jn = "switchback.db", "ingress/journal.db"
	const restore, export = "restore it from a backup", "switchback journal export --data "
	const lost = "is empty or missing, but"
	const held = "this data directory held data"
	tests := []struct {
		name    string
		cmd     string // serve or ingress
		file    string
		damage  func(t *testing.T, path string)
		want    []string
		wantRun bool // with --init: it starts
	}{
		{"control db cut to 32 KiB", "serve", db, truncate(32 << 10), []string{db, "damaged", restore}, false},
		{"control db with random pages overwritten (seed 1)", "serve", db, overwrite(1), []string{db, "damaged", restore}, false},
		{"control db with random pages overwritten (seed 2)", "serve", db, overwrite(2), []string{db, "damaged", restore}, false},
		{"journal cut to 32 KiB", "serve", jn, truncate(32 << 10), []string{jn, "damaged", export}, false},
		{"journal with random pages overwritten (seed 1)", "serve", jn, overwrite(1), []string{jn, "damaged", export}, false},
		{"journal with random pages overwritten (seed 2)", "serve", jn, overwrite(2), []string{jn, "damaged", export}, false},
		{"router's journal with random pages overwritten", "ingress", jn, overwrite(3), []string{jn, "damaged", export}, false},
		{"control db cut to 0 bytes", "serve", db, truncate(0), []string{db, lost, held, jn, "--init"}, false},
		{"journal cut to 0 bytes", "serve", jn, truncate(0), []string{jn, lost, held, db, "--init"}, false},
		{"router's journal cut to 0 bytes", "ingress", jn, truncate(0), []string{jn, lost, held, "snapshot.json", "--init"}, false},
		{"control db cut to 0 bytes, with --init", "serve", db, truncate(0), nil, true},
		{"journal cut to 0 bytes, with --init", "serve", jn, truncate(0), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := copyDir(t, pristine)
			if tt.cmd == "ingress" {
				// A router that has synced once keeps its snapshot.
				if err := os.WriteFile(filepath.Join(data, "ingress", "snapshot.json"), []byte(`{"version":1}`), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(data, tt.file)
			tt.damage(t, path)
			addr := freeAddr(t)
			var args []string
			if tt.cmd == "serve" {
				args = []string{"serve", "--data", data, "--addr", addr}
			} else {
				args = []string{"ingress", "--data", filepath.Join(data, "ingress"), "--addr", addr, "--control", "http://127.0.0.1:9"}
			}
			env := []string{"SWITCHBACK_ADMIN_TOKEN=" + crashAdmin, "SWITCHBACK_TOKEN=router-token"}
			if tt.wantRun {
				proc := exec.Command(bin, append(args, "--init")...)
				proc.Env = append(os.Environ(), env...)
				var errOut bytes.Buffer
				proc.Stderr = &errOut
				if err := proc.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { proc.Process.Kill(); proc.Wait() })
				deadline := time.Now().Add(20 * time.Second)
				for {
					resp, err := http.Get("http://" + addr + "/healthz")
					if err == nil {
						resp.Body.Close()
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("with --init, serve did not come up: %v\nstderr: %s", err, errOut.String())
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			code, _, stderr := runToExit(t, bin, env, args...)
			if code != 1 {
				t.Fatalf("exit status = %d, want 1\nstderr: %s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, bad := range []string{"goroutine", "panic"} {
				if strings.Contains(stderr, bad) {
					t.Errorf("stderr holds %q, want a message, not a crash:\n%s", bad, stderr)
				}
			}
			if strings.Contains(tt.name, "journal") && strings.Contains(tt.name, "overwritten") {
				checkExport(t, bin, data)
			}
		})
	}
}

// checkExport runs "journal export" on serve's data dir: it writes the
// events it can read as JSON lines and says how many it lost.
func checkExport(t *testing.T, bin, data string) {
	t.Helper()
	code, stdout, stderr := runToExit(t, bin, nil, "journal", "export", "--data", data)
	if code != 0 {
		t.Fatalf("journal export: status %d\nstderr: %s", code, stderr)
	}
	n := 0
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var e journal.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Seq == 0 || e.DeliveryID != fmt.Sprintf("d-%05d", e.Seq-1) {
			t.Fatalf("journal export line %q: %v, want an event of the journal", sc.Bytes(), err)
		}
		n++
	}
	if want := fmt.Sprintf("%d events written", n); !strings.Contains(stderr, want) {
		t.Errorf("journal export stderr = %q, want %q", stderr, want)
	}
	if n < 3000 && !strings.Contains(stderr, "lost to damage") {
		t.Errorf("journal export wrote %d of 3000 events and says nothing of the loss: %q", n, stderr)
	}
	t.Logf("journal export: %d lines; %s", n, strings.TrimSpace(stderr))
}
