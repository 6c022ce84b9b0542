package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startIngressRun starts "switchback ingress" through run, as main does,
// with a control service nobody answers at, and returns its base URL.
func startIngressRun(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	env := map[string]string{"SWITCHBACK_TOKEN": "router-token"}
	go func() {
		done <- run(ctx, append([]string{"ingress", "--control", "http://127.0.0.1:9", "--data", t.TempDir(), "--addr", "127.0.0.1:0",
			"--log-level", "error"}, args...), func(k string) string { return env[k] }, stdout, stderr)
	}()
	t.Cleanup(func() { cancel(); <-done })
	re := regexp.MustCompile(`listening on (http://[^\s,]+)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingress did not start: %s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// trickle sends a request whose body of 1000 bytes comes one byte every
// 50 ms, and returns the status of the answer.
func trickle(t *testing.T, base, method, path, token string) int {
	t.Helper()
	u, _ := url.Parse(base)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n", method, path, u.Host)
	if token != "" {
		fmt.Fprintf(conn, "Authorization: Bearer %s\r\n", token)
	}
	fmt.Fprint(conn, "\r\n{")
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-sent }()
	// Only a guard against a test that would hang: the server answers in
	// about its read timeout.
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s with a trickled body: no answer: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestSlowBodiesGet408(t *testing.T) {
	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, "--data", t.TempDir(), "--read-timeout", "300ms")
	ingressURL := startIngressRun(t, "--read-timeout", "300ms")
	tests := []struct {
		name, base, method, path, token string
	}{
		{"serve: a webhook", s.url, "POST", "/hooks/acme", ""},
		{"serve: the API", s.url, "PUT", "/v1/partners/acme", crashAdmin},
		{"serve: the API without a token", s.url, "POST", "/v1/reports", ""},
		{"ingress: a webhook", ingressURL, "POST", "/hooks/acme", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := trickle(t, tt.base, tt.method, tt.path, tt.token); got != http.StatusRequestTimeout {
				t.Errorf("%s %s with a body trickled past the read timeout = %d, want 408", tt.method, tt.path, got)
			}
		})
	}
}

// Bodies that arrive in time reach the handlers as they were, limits
// included.
func TestReadTimeoutPassesBodiesThrough(t *testing.T) {
	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, "--data", t.TempDir(), "--read-timeout", "10s")
	tests := []struct {
		name, id string
		body     string
		want     int
	}{
		{"a partner", "acme", `{"name":"Acme","psa":"generic"}`, http.StatusCreated},
		{"a body over the API's 1 MiB", "globex", `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("PUT", s.url+"/v1/partners/"+tt.id, bytes.NewReader([]byte(tt.body)))
			req.Header.Set("Authorization", "Bearer "+crashAdmin)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("PUT = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}
