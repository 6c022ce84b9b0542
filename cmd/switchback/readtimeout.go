package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/switchbackhq/switchback/internal/httpapi"
)

// defaultReadTimeout bounds the time to read a request unless
// --read-timeout says otherwise.
const defaultReadTimeout = 30 * time.Second

// readHeaderTimeout is the time allowed for a request's headers: the
// server's usual bound, or the read timeout when that is shorter.
func readHeaderTimeout(readTimeout time.Duration) time.Duration {
	return min(httpapi.ReadHeaderTimeout, readTimeout)
}

// maxBuffered bounds the body withReadTimeout reads ahead: past it, the
// rest is left for the handler, whose own limit (1 MiB for the API, the
// router's --body-limit for webhooks) then answers 413.
const maxBuffered = 8 << 20

// withReadTimeout reads each request's body within d of the request's
// start, before next sees it, and answers 408 Request Timeout when the body
// does not arrive in time. http.Server.ReadTimeout alone would close the
// connection without a word; a body trickled a byte a second would
// otherwise hold its connection and a handler for as long as the sender
// likes.
func withReadTimeout(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
			next.ServeHTTP(w, r) // not a connection that takes deadlines (a test recorder)
			return
		}
		var buf bytes.Buffer
		_, err := io.Copy(&buf, io.LimitReader(r.Body, maxBuffered))
		if isTimeout(err) {
			w.Header().Set("Connection", "close")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestTimeout)
			io.WriteString(w, `{"error":{"code":"request_timeout","message":"the request body did not arrive in time: send it again"}}`+"\n")
			return
		}
		// Once the body is read, the deadline would only cut the server's
		// watch for a client gone away, which cancels the request's
		// context: lift it for the handler's own work.
		rc.SetReadDeadline(time.Time{})
		body := io.Reader(&buf)
		if err != nil {
			body = io.MultiReader(&buf, errReader{err}) // the handler answers as it does for a broken body
		} else if int64(buf.Len()) == maxBuffered {
			body = io.MultiReader(&buf, r.Body)
		}
		r.Body = readCloser{body, r.Body}
		next.ServeHTTP(w, r)
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// readCloser reads from the buffered body and closes the original.
type readCloser struct {
	io.Reader
	io.Closer
}
