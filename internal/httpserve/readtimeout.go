package httpserve

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httperr"
)

// DefaultReadTimeout bounds the time to read a request unless
// --read-timeout says otherwise.
const DefaultReadTimeout = 30 * time.Second

// Server settings shared by every listener of the binary.
const (
	// MaxHeaderTimeout bounds the time to read a request's headers.
	MaxHeaderTimeout = 5 * time.Second
	// IdleTimeout closes keep-alive connections left idle this long.
	IdleTimeout = 120 * time.Second
)

// ReadHeaderTimeout is the time allowed for a request's headers: the
// server's usual bound, or the read timeout when that is shorter.
func ReadHeaderTimeout(readTimeout time.Duration) time.Duration {
	return min(MaxHeaderTimeout, readTimeout)
}

// errBodyTimeout is the answer to a body that did not arrive in time.
var errBodyTimeout = domain.Errorf(domain.CodeRequestTimeout, "the request body did not arrive in time: send it again")

// WithReadTimeout reads each request's body within d of the request's
// start, before next sees it, and answers 408 Request Timeout when the body
// does not arrive in time. http.Server.ReadTimeout alone would close the
// connection without a word; a body trickled a byte a second would
// otherwise hold its connection and a handler for as long as the sender
// likes. It reads at most limit+1 bytes ahead, the handlers' largest
// limit and one byte more: a larger body reaches the handler, which
// answers 413, without more of it held in memory.
func WithReadTimeout(d time.Duration, limit int64, next http.Handler) http.Handler {
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
		_, err := io.Copy(&buf, io.LimitReader(r.Body, limit+1))
		if isTimeout(err) {
			w.Header().Set("Connection", "close")
			httperr.Write(w, errBodyTimeout)
			return
		}
		body := io.Reader(&buf)
		switch {
		case err != nil:
			body = io.MultiReader(&buf, errReader{err}) // the handler answers as it does for a broken body
		case int64(buf.Len()) > limit:
			body = io.MultiReader(&buf, r.Body) // too large: the handler refuses it, the deadline still holds
		default:
			// Once the body is read, the deadline would only cut the
			// server's watch for a client gone away, which cancels the
			// request's context: lift it for the handler's own work.
			rc.SetReadDeadline(time.Time{})
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
