package httpserve

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/httperr"
)

// A body that stops arriving is answered 408 with the error envelope of
// every HTTP face, and the connection is closed; the handler never runs.
func TestWithReadTimeoutAnswers408(t *testing.T) {
	ran := make(chan struct{}, 1)
	srv := httptest.NewServer(WithReadTimeout(100*time.Millisecond, 1<<10, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		ran <- struct{}{}
	})))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Ten bytes of the hundred announced, then nothing.
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
	conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a guard against a hang only
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status = %d, want 408", resp.StatusCode)
	}
	if !resp.Close {
		t.Errorf("the answer does not close the connection")
	}
	var body map[string]httperr.Body
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("body is not the error envelope: %v", err)
	}
	if got, want := body["error"].Code, "request_timeout"; got != want {
		t.Errorf("code = %q, want %q", got, want)
	}
	select {
	case <-ran:
		t.Error("the handler ran for a body that never arrived")
	default:
	}
}

// Bodies that arrive in time reach the handler whole, those over the limit
// included, so that the handler answers them as it would without the
// middleware.
func TestWithReadTimeoutPassesBodiesThrough(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"small", `{"name":"Acme"}`},
		{"over the limit", strings.Repeat("x", 3000)},
	}
	srv := httptest.NewServer(WithReadTimeout(10*time.Second, 1<<10, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})))
	defer srv.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL, "text/plain", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(got) != tt.body {
				t.Errorf("got %d with %d bytes, want 200 with the %d bytes sent", resp.StatusCode, len(got), len(tt.body))
			}
		})
	}
}

// Over TLS, Listen serves the public side encrypted and the loopback side
// in plain HTTP, through one server.
func TestListenTLSKeepsAPlainLoopbackSide(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS() // for its certificate and a client that trusts it
	defer ts.Close()
	ln, scheme, selfURL, err := Listen("127.0.0.1:0", ts.TLS)
	if err != nil {
		t.Fatal(err)
	}
	if scheme != "https" {
		t.Errorf("scheme = %q, want https", scheme)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.TLS != nil)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-done
	}()
	for _, tt := range []struct {
		name, url string
		client    *http.Client
		want      string
	}{
		{"public, over TLS", "https://" + ln.Addr().String(), ts.Client(), "true"},
		{"loopback, plain", selfURL, http.DefaultClient, "false"},
	} {
		resp, err := tt.client.Get(tt.url)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != tt.want {
			t.Errorf("%s: request over TLS = %s, want %s", tt.name, got, tt.want)
		}
	}
}
