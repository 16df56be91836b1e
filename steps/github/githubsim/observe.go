package githubsim

import (
	"sync"

	"github.com/cessda/runbook/steps/simkit"
)

// everyServer holds the observers ObserveEveryServer installed. One hook, registered once,
// hands each exchange of every server to the observers installed at that moment, so
// registering and stopping never write newServerHooks while a test may be starting servers.
var everyServer struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(simkit.Observed)
}

func init() {
	newServerHooks = append(newServerHooks, func(s *Server) {
		s.Observe(func(o simkit.Observed) {
			everyServer.mu.Lock()
			fns := make([]func(simkit.Observed), 0, len(everyServer.fns))
			for id := 0; id < everyServer.next; id++ {
				if fn, ok := everyServer.fns[id]; ok {
					fns = append(fns, fn)
				}
			}
			everyServer.mu.Unlock()
			for _, fn := range fns {
				fn(o)
			}
		})
	})
}

// ObserveEveryServer calls fn with every exchange (both bodies) of every server New
// starts, until stop is called: a test package checks what its tests send and receive
// (the OpenAPI check) without reaching into each test's server. fn may be called from
// many servers at once.
func ObserveEveryServer(fn func(simkit.Observed)) (stop func()) {
	everyServer.mu.Lock()
	defer everyServer.mu.Unlock()
	if everyServer.fns == nil {
		everyServer.fns = map[int]func(simkit.Observed){}
	}
	id := everyServer.next
	everyServer.next++
	everyServer.fns[id] = fn
	return func() {
		everyServer.mu.Lock()
		delete(everyServer.fns, id)
		everyServer.mu.Unlock()
	}
}
