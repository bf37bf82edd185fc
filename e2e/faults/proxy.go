package faults

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
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

// Proxy is a toxiproxy proxy run inside the test process, listening on
// 127.0.0.1 and forwarding to one database server.
type Proxy struct {
	p      *toxiproxy.Proxy
	addr   string
	active Fault
}

// opTimeout bounds adding or removing a toxic, and starting or stopping
// the proxy: toxiproxy waits for every link to take the change.
const opTimeout = 15 * time.Second

// StartProxy starts a proxy on a free port of 127.0.0.1 that forwards to
// upstream, a host:port on 127.0.0.1. Close it when done.
func StartProxy(upstream string) (*Proxy, error) {
	host, _, err := net.SplitHostPort(upstream)
	if err != nil {
		return nil, fmt.Errorf("faults: upstream %q: %w", upstream, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("faults: upstream %q is not a loopback address", upstream)
	}
	logger := zerolog.Nop()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), logger)
	p := toxiproxy.NewProxy(server, "newstore", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("faults: start proxy to %s: %w", upstream, err)
	}
	return &Proxy{p: p, addr: p.Listen}, nil
}

// Addr returns the host:port the proxy listens on.
func (p *Proxy) Addr() string { return p.addr }

// Apply puts f on the proxy, replacing the fault it had.
func (p *Proxy) Apply(f Fault) error {
	if err := p.Clear(); err != nil {
		return err
	}
	err := within(fmt.Sprintf("apply %s", f.Name), func() error {
		switch {
		case f.Outage:
			p.p.Stop()
		case f.Toxic != "":
			if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(f.Toxic)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.active = f
	return nil
}

// Clear removes the fault the proxy has, restarting it after an outage on
// the same address.
func (p *Proxy) Clear() error {
	f := p.active
	p.active = faultNone
	return within(fmt.Sprintf("clear %s", f.Name), func() error {
		switch {
		case f.Outage:
			return p.p.Start()
		case f.Toxic != "":
			p.p.Toxics.ResetToxics(context.Background())
		}
		return nil
	})
}

// Close stops the proxy and cuts its connections.
func (p *Proxy) Close() error {
	return within("stop proxy", func() error {
		p.p.Toxics.ResetToxics(context.Background())
		p.p.Stop()
		return nil
	})
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
