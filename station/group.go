package station

import (
	"context"
	"sync"
)

// group runs a set of members that changes while it runs: a station's
// scanners, a gateway's stations. A live config reload stops the members
// it removes, waiting until each has returned (so a port is closed before
// a new member opens it), and starts the ones it adds, while the others
// run on untouched. The first error a member returns on its own ends the
// group, like an errgroup: a member stopped by the group is not an error.
type group struct {
	mu   sync.Mutex
	ctx  context.Context // while the group runs; nil before and after
	errc chan error
	live map[any]*member
}

type member struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// begin starts the group under ctx; members started before it are not
// run, so the owner starts its initial members right after begin.
func (g *group) begin(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ctx, g.errc, g.live = ctx, make(chan error, 1), map[any]*member{}
}

// start runs fn as the member key until the group ends or stop(key). It
// does nothing when the group is not running.
func (g *group) start(key any, fn func(context.Context) error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ctx == nil {
		return
	}
	ctx, cancel := context.WithCancel(g.ctx)
	m := &member{cancel: cancel, done: make(chan struct{})}
	g.live[key] = m
	errc := g.errc
	go func() {
		defer close(m.done)
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			select {
			case errc <- err:
			default: // the group already ends with an earlier error
			}
		}
	}()
}

// stop ends the member key and returns once it has returned.
func (g *group) stop(key any) {
	g.mu.Lock()
	m := g.live[key]
	delete(g.live, key)
	g.mu.Unlock()
	if m != nil {
		m.cancel()
		<-m.done
	}
}

// wait runs until the group's context ends or a member fails, then stops
// every member and returns the failure, if any.
func (g *group) wait() error {
	g.mu.Lock()
	ctx, errc := g.ctx, g.errc
	g.mu.Unlock()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	g.mu.Lock()
	live := g.live
	g.ctx, g.live = nil, nil
	g.mu.Unlock()
	for _, m := range live {
		m.cancel()
	}
	for _, m := range live {
		<-m.done
	}
	return err
}

// context is the group's context while it runs, else nil.
func (g *group) context() context.Context {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ctx
}
