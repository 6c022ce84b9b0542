package main

import (
	"errors"
	"net"
	"sync"
	"time"
)

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
