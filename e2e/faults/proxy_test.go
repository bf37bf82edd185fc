package faults

import (
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFaultChangesDoNotWaitForWedgedConnections checks that the proxy
// takes a fault away, puts the next one on, and closes, while a connection
// through it is wedged: a client that reads nothing of a long reply, so
// that every buffer on the way fills, the proxy's writer to the client
// blocks, and the toxic's goroutine blocks handing it the next chunk.
// toxiproxy removes a toxic by interrupting that goroutine, which cannot
// take the interrupt while it is blocked, and waits for it with its toxic
// collection locked, so the removal, every later accept and Stop hang
// (upstream issue 558; CI once stopped on "clear slicer: no answer after
// 15s", then "stop proxy: no answer after 15s"). The proxy never removes a
// toxic, and stopping a proxy does not wait for its connections. Every
// change is bounded (opTimeout) and fails the test if it hangs.
func TestFaultChangesDoNotWaitForWedgedConnections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	upstream := startReplier(t, 64<<20)
	p, err := StartProxy(upstream)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	}()
	for _, f := range []Fault{
		// The walk's slicer and latency, faster, so that the buffers fill
		// in a moment.
		{Name: "slicer", Toxic: `{"name":"f","type":"slicer","stream":"downstream","attributes":{"average_size":1024,"size_variation":512,"delay":0}}`},
		{Name: "latency", Toxic: `{"name":"f","type":"latency","stream":"downstream","attributes":{"latency":50}}`},
	} {
		t.Run(f.Name, func(t *testing.T) {
			before := writersBlocked()
			if err := p.Apply(f); err != nil {
				t.Fatal(err)
			}
			c, err := p.DialContext(ctx, "tcp", upstream)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Not needed for the proxy to pass, only to make sure that the
			// changes below meet a wedged connection.
			for writersBlocked() <= before {
				if ctx.Err() != nil {
					t.Fatalf("the proxy's writer to a client that reads nothing never blocked (%d blocked before, %d now)", before, writersBlocked())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := p.Clear(); err != nil {
				t.Fatal(err)
			}
			// The next change stops the proxy the wedged connection goes
			// through.
			if err := p.Apply(faultOutage); err != nil {
				t.Fatal(err)
			}
			if err := p.Clear(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// startReplier starts a server on 127.0.0.1 that writes size bytes to
// every connection and then reads it to its end. It stops, and closes its
// connections, when the test ends.
func startReplier(t *testing.T, size int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				if _, err := c.Write(make([]byte, size)); err == nil {
					_, _ = io.Copy(io.Discard, c)
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// writersBlocked counts the toxiproxy link writers blocked writing to their
// destination's socket.
func writersBlocked() int {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[IO wait") && strings.Contains(g, "net.(*conn).Write") &&
			strings.Contains(g, "toxiproxy/v2.(*ToxicLink).write") {
			n++
		}
	}
	return n
}
