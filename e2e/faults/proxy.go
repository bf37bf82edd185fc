package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/rs/zerolog"
)

// Fault is one kind of trouble the proxy puts between the library and the
// new store for a window of the walk.
type Fault struct {
	Name string // short name, as in the report: "latency", "outage"
	What string // what the new store's connections go through
	// Toxic is the toxiproxy toxic, as the JSON its API takes; "" for none.
	Toxic string
	// Outage stops the proxy: the listener closes and every connection
	// through it is cut, so the new store refuses connections.
	Outage bool
}

// The faults of a walk, in the order each two-store stage gets them. The
// latency, the swallowed requests and the bandwidth limit would each hold
// an unbounded call for seconds, far beyond the bound the suite puts on
// the callers' latency, so that bound tells a caller the library shielded
// from one it let wait. Half the connections are reset by the peer.
var (
	faultNone    = Fault{Name: "none", What: "no fault (baseline)"}
	faultLatency = Fault{Name: "latency", What: "2 s ±100 ms added to every reply",
		Toxic: `{"name":"f","type":"latency","stream":"downstream","attributes":{"latency":2000,"jitter":100}}`}
	faultTimeout = Fault{Name: "timeout", What: "requests swallowed until the fault ends, then connections closed",
		Toxic: `{"name":"f","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`}
	faultReset = Fault{Name: "reset_peer", What: "half the connections reset (TCP RST) on their next request",
		Toxic: `{"name":"f","type":"reset_peer","stream":"upstream","toxicity":0.5,"attributes":{"timeout":0}}`}
	faultBandwidth = Fault{Name: "bandwidth", What: "replies throttled to 1 KB/s",
		Toxic: `{"name":"f","type":"bandwidth","stream":"downstream","attributes":{"rate":1}}`}
	faultSlicer = Fault{Name: "slicer", What: "replies cut into ~16-byte pieces 1 ms apart",
		Toxic: `{"name":"f","type":"slicer","stream":"downstream","attributes":{"average_size":16,"size_variation":8,"delay":1000}}`}
	faultOutage   = Fault{Name: "outage", What: "proxy down: connections cut and refused", Outage: true}
	faultRecovery = Fault{Name: "recovery", What: "proxy back, no fault: the breaker closes, repairs drain"}
)

// stageFaults is the sequence of windows each two-store stage walks
// through: a baseline, every fault, and the recovery after the outage.
var stageFaults = []Fault{faultNone, faultLatency, faultTimeout, faultReset, faultBandwidth, faultSlicer, faultOutage, faultRecovery}

// Proxy puts the faults between the library and one database server, over
// real TCP on 127.0.0.1, with toxiproxy run inside the test process.
//
// A toxic is never added to or removed from a toxiproxy proxy that carries
// connections. toxiproxy changes the toxics of a live proxy by interrupting
// the goroutines of every connection in turn, with its toxic collection
// locked, and a connection whose goroutines are blocked on a peer that does
// not read cannot be interrupted: the change then never returns, the proxy
// accepts no connection (accepting one takes the same lock), and stopping
// it waits for the accept loop forever (toxiproxy issue 558; CI once saw
// "clear slicer" and then "stop proxy" hang so). Instead each fault gets a
// fresh toxiproxy proxy on a new port, whose toxic is in place before it
// listens. The drivers dial through [Proxy.DialContext] (see [Proxy.DSN]),
// which connects to the proxy of the current fault, and changing the fault
//
//  1. starts the next fault's proxy (none for an outage) and points
//     DialContext at it;
//  2. retires the proxy of the fault before: a request already sent on one
//     of its connections gets its answer as that fault lets it, and the
//     next write on the connection closes it instead, sending nothing, so
//     the driver discards it and database/sql retries the request on a new
//     connection, through the new fault's proxy;
//  3. and cuts the proxy retired at the change before: it closes the
//     client end of each of its connections still open (by then most sit
//     idle in a pool; a request still running fails, as in an outage), and
//     stops that proxy, whose listener closes.
//
// An outage cuts the current proxy and the retired one at once, so that
// every connection is cut and new ones are refused. Stopping a proxy whose
// toxics were never changed waits only for its accept loop, which no toxic
// operation holds. A stopped proxy may leave goroutines of its connections
// blocked for good (toxiproxy never unblocks a link whose writer is gone);
// they hold nothing the next proxy uses. Apply, Clear and Close must be
// called from one goroutine; DialContext from any.
type Proxy struct {
	upstream string
	server   *toxiproxy.ApiServer
	network  string // the network name the MySQL driver dials through DialContext
	active   Fault  // the fault the proxy has

	mu      sync.Mutex
	cur     *backend // the proxy dialed; nil in an outage and once closed
	retired *backend // the proxy of the fault before, draining; cut at the next change
	down    string   // address of the proxy stopped last, dialed in an outage: it refuses
	closed  bool
	started int      // proxies started, for their names
	pgNames []string // connection configs registered with pgx, unregistered by Close
}

// backend is one toxiproxy proxy of a Proxy, with one fault for its whole
// life.
type backend struct {
	tp      *toxiproxy.Proxy
	fault   Fault
	addr    string
	retired atomic.Bool             // the connections close at their next write
	conns   map[*proxyConn]struct{} // open client ends, under Proxy.mu
}

// proxyConn is the client end of a connection through a backend.
type proxyConn struct {
	*net.TCPConn // for the MySQL driver's liveness check, which needs syscall.Conn
	p            *Proxy
	b            *backend
}

// errRetired is the cause of a write on a connection whose fault ended.
var errRetired = errors.New("faults: proxy: the fault of this connection ended; connection closed before sending")

// Write sends b, unless the fault of the connection ended: it then closes
// the connection, sending nothing, which the drivers take as a connection
// to discard and database/sql as a request to retry on another.
func (c *proxyConn) Write(b []byte) (int, error) {
	if c.b.retired.Load() {
		_ = c.Close()
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errRetired}
	}
	return c.TCPConn.Write(b)
}

// Close closes the connection.
func (c *proxyConn) Close() error {
	c.p.mu.Lock()
	delete(c.b.conns, c)
	c.p.mu.Unlock()
	return c.TCPConn.Close()
}

// opTimeout bounds starting and stopping one toxiproxy proxy. Neither has
// anything to wait for but its own listener and accept loop; a proxy that
// does not answer in this time is stuck, and fails the test.
const opTimeout = 15 * time.Second

// networks numbers the networks registered with the MySQL driver.
var networks atomic.Int64

// StartProxy starts a proxy with no fault that forwards to upstream, a
// host:port on 127.0.0.1. Reach it through [Proxy.DSN]; close it when done.
func StartProxy(upstream string) (*Proxy, error) {
	host, _, err := net.SplitHostPort(upstream)
	if err != nil {
		return nil, fmt.Errorf("faults: upstream %q: %w", upstream, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("faults: upstream %q is not a loopback address", upstream)
	}
	logger := zerolog.Nop()
	p := &Proxy{upstream: upstream, server: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), logger),
		network: fmt.Sprintf("cutover-faults-%d", networks.Add(1)), active: faultNone}
	b, err := p.start(faultNone)
	if err != nil {
		return nil, err
	}
	p.cur = b
	mysql.RegisterDialContext(p.network, func(ctx context.Context, _ string) (net.Conn, error) {
		return p.DialContext(ctx, "tcp", upstream)
	})
	return p, nil
}

// Apply puts f on the proxy, replacing the fault it had.
func (p *Proxy) Apply(f Fault) error {
	if p.active.clean() && f.clean() {
		p.active = f // nothing to change: the connections stay
		return nil
	}
	return p.replace(f)
}

// Clear removes the fault the proxy has.
func (p *Proxy) Clear() error {
	if p.active.clean() {
		p.active = faultNone
		return nil
	}
	return p.replace(faultNone)
}

// clean reports whether f leaves the proxy as it is with no fault.
func (f Fault) clean() bool { return f.Toxic == "" && !f.Outage }

// replace gives the proxy fault f, as the type's documentation says.
func (p *Proxy) replace(f Fault) error {
	var next *backend
	if !f.Outage {
		b, err := p.start(f)
		if err != nil {
			return err
		}
		next = b
	}
	p.mu.Lock()
	var cut []*backend
	if p.retired != nil {
		cut = append(cut, p.retired)
	}
	prev := p.cur
	p.cur, p.retired = next, nil
	if prev != nil {
		if f.Outage {
			cut = append(cut, prev)
		} else {
			prev.retired.Store(true)
			p.retired = prev
		}
	}
	for _, b := range cut {
		b.cutClients()
		p.down = b.addr
	}
	p.mu.Unlock()
	p.active = f
	return p.stop(cut)
}

// start starts a toxiproxy proxy on a new port of 127.0.0.1 with the toxic
// of f in place before it accepts any connection.
func (p *Proxy) start(f Fault) (*backend, error) {
	p.mu.Lock()
	p.started++
	name := fmt.Sprintf("newstore-%d-%s", p.started, f.Name)
	p.mu.Unlock()
	tp := toxiproxy.NewProxy(p.server, name, "127.0.0.1:0", p.upstream)
	if f.Toxic != "" {
		// No link exists yet, so toxiproxy has no connection to interrupt.
		if _, err := tp.Toxics.AddToxicJson(strings.NewReader(f.Toxic)); err != nil {
			return nil, fmt.Errorf("faults: proxy: toxic of fault %s: %w", f.Name, err)
		}
	}
	err := within(fmt.Sprintf("start the proxy of fault %s to %s", f.Name, p.upstream), tp.Start)
	if err != nil {
		return nil, err
	}
	return &backend{tp: tp, fault: f, addr: tp.Listen, conns: map[*proxyConn]struct{}{}}, nil
}

// stop stops the proxies of bs, whose clients are cut already.
func (p *Proxy) stop(bs []*backend) error {
	var errs []error
	for _, b := range bs {
		errs = append(errs, within(fmt.Sprintf("stop the proxy of fault %s on %s (close its listener, end its accept loop)", b.fault.Name, b.addr),
			func() error {
				b.tp.Stop()
				return nil
			}))
	}
	return errors.Join(errs...)
}

// cutClients closes the client end of every connection through b still
// open. Call it with p.mu held, once b is no longer dialed.
func (b *backend) cutClients() {
	for c := range b.conns {
		_ = c.TCPConn.Close() // the driver may be closing it too
	}
	clear(b.conns)
}

// DialContext connects to the proxy that has the current fault, as the
// database drivers do for each new connection to the new store (network
// and addr are not used). In an outage it dials the address of the proxy
// stopped last, which refuses the connection.
func (p *Proxy) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	p.mu.Lock()
	b, addr, closed := p.cur, p.down, p.closed
	if b != nil {
		addr = b.addr
	}
	p.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("faults: proxy to %s is closed", p.upstream)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case b == nil:
		// The proxy stopped last had not closed its listener yet, or its
		// port serves something else now: the outage refuses anyway.
		_ = nc.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: nc.RemoteAddr(), Err: syscall.ECONNREFUSED}
	case p.cur != b:
		// The fault changed while the connection was made.
		_ = nc.Close()
		return nil, fmt.Errorf("faults: proxy to %s: connection through %s closed as it was made: fault %s ended", p.upstream, addr, b.fault.Name)
	}
	c := &proxyConn{TCPConn: nc.(*net.TCPConn), p: p, b: b}
	b.conns[c] = struct{}{}
	return c, nil
}

// Close stops the proxy and cuts its connections. Close the connection
// pools opened with its DSNs first.
func (p *Proxy) Close() error {
	p.mu.Lock()
	var cut []*backend
	for _, b := range []*backend{p.retired, p.cur} {
		if b != nil {
			b.cutClients()
			cut = append(cut, b)
		}
	}
	p.cur, p.retired, p.closed = nil, nil, true
	names := p.pgNames
	p.pgNames = nil
	p.mu.Unlock()
	mysql.DeregisterDialContext(p.network)
	for _, n := range names {
		stdlib.UnregisterConnConfig(n)
	}
	return p.stop(cut)
}

// within runs fn, failing if it takes longer than opTimeout: a proxy that
// hangs must fail the test, not stall it.
func within(what string, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	t := time.NewTimer(opTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("faults: proxy: %s: %w", what, err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("faults: proxy: %s: no answer after %v", what, opTimeout)
	}
}
