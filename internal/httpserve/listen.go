package httpserve

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// LoadTLS returns the server's TLS configuration from PEM files, TLS 1.2 at
// least; it returns the error of reading or parsing them.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Listen listens on addr, over TLS when tlsConfig is not nil. It returns
// the listener, the scheme its clients use, and a plain-HTTP URL on which
// the process reaches itself: with TLS, the embedded router keeps talking
// plain HTTP, on a loopback listener of its own, since it would not trust
// the public certificate for 127.0.0.1. The error is a listen's.
func Listen(addr string, tlsConfig *tls.Config) (ln net.Listener, scheme, selfURL string, err error) {
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		return nil, "", "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	if tlsConfig == nil {
		return ln, "http", "http://" + ln.Addr().String(), nil
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return nil, "", "", err
	}
	return newDualListener(tls.NewListener(ln, tlsConfig), inner), "https", "http://" + inner.Addr().String(), nil
}

// dualListener accepts from a public listener (TLS) and from a loopback
// one (plain HTTP, for the embedded router, whose clients would not trust
// the public certificate for 127.0.0.1) for one http.Server.
type dualListener struct {
	net.Listener // the public one: Addr reports it
	inner        net.Listener
	conns        chan net.Conn
	done         chan struct{}
	once         sync.Once
	wg           sync.WaitGroup
}

func newDualListener(public, inner net.Listener) *dualListener {
	d := &dualListener{Listener: public, inner: inner, conns: make(chan net.Conn), done: make(chan struct{})}
	for _, l := range []net.Listener{public, inner} {
		d.wg.Go(func() {
			for {
				c, err := l.Accept()
				if errors.Is(err, net.ErrClosed) {
					return
				}
				if err != nil {
					// Out of file descriptors and the like: wait as
					// http.Server does, rather than stop accepting.
					select {
					case <-time.After(10 * time.Millisecond):
						continue
					case <-d.done:
						return
					}
				}
				select {
				case d.conns <- c:
				case <-d.done:
					c.Close()
					return
				}
			}
		})
	}
	return d
}

func (d *dualListener) Accept() (net.Conn, error) {
	select {
	case c := <-d.conns:
		return c, nil
	case <-d.done:
		return nil, net.ErrClosed
	}
}

// Close closes both listeners and waits for their accept loops.
func (d *dualListener) Close() error {
	var err error
	d.once.Do(func() {
		close(d.done)
		err = errors.Join(d.Listener.Close(), d.inner.Close())
		d.wg.Wait()
	})
	return err
}
