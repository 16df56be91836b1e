package kubeapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	restwatch "k8s.io/client-go/rest/watch"
)

// serveWatch streams the clientset's watch as newline-delimited JSON watch events over a
// chunked response, until the client goes away, timeoutSeconds (or the server's watch
// timeout) passes, the source watch ends (kubesim's DropWatches) or the server closes.
//
// The fake clientset's watchers panic when 100 events wait unread, so events are drained
// at once into a queue here and written from it; a client that falls maxQueue events
// behind has its watch ended, as the API server ends a watch that cannot keep up.
func (s *Server) serveWatch(r *request, cl ops, o metav1.ListOptions) {
	ls, fs, err := selectors(o)
	if err != nil {
		s.writeError(r, err)
		return
	}
	timeout := s.watchTimeout
	if o.TimeoutSeconds != nil && *o.TimeoutSeconds > 0 {
		timeout = time.Duration(*o.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	w, err := cl.watch(ctx, o)
	if err != nil {
		s.writeError(r, err)
		return
	}
	q := &queue{notify: make(chan struct{}, 1)}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for ev := range w.ResultChan() {
			q.push(ev)
		}
		q.end()
	}()
	defer func() {
		w.Stop()
		<-drained
	}()

	info, _ := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
	enc := restwatch.NewEncoder(streaming.NewEncoder(info.StreamSerializer.Framer.NewFrameWriter(r.w), info.StreamSerializer.Serializer),
		encoder(r.res.gvr.GroupVersion()))
	r.w.Header().Set("Content-Type", "application/json")
	r.w.Header().Set("Cache-Control", "no-cache, private")
	r.w.WriteHeader(http.StatusOK)
	r.w.Flush()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-q.notify:
		}
		evs, ended := q.take()
		if len(evs) > s.maxQueue {
			return
		}
		for _, ev := range evs {
			if ev.Type != watch.Error && ev.Type != watch.Bookmark && !matches(ev.Object, ls, fs) {
				continue
			}
			obj := ev.Object
			if ev.Type != watch.Error {
				obj = obj.DeepCopyObject() // the fake hands every watcher the same object
				if m, err := meta.Accessor(obj); err == nil && r.res.namespaced && m.GetNamespace() == "" {
					m.SetNamespace(r.ns)
				}
			}
			if err := enc.Encode(&watch.Event{Type: ev.Type, Object: obj}); err != nil {
				return
			}
		}
		r.w.Flush()
		if ended {
			return
		}
	}
}

// queue is an unbounded event queue between the source watch and the response writer.
type queue struct {
	mu     sync.Mutex
	evs    []watch.Event
	ended  bool
	notify chan struct{}
}

func (q *queue) push(ev watch.Event) {
	q.mu.Lock()
	q.evs = append(q.evs, ev)
	q.mu.Unlock()
	q.poke()
}

func (q *queue) end() {
	q.mu.Lock()
	q.ended = true
	q.mu.Unlock()
	q.poke()
}

func (q *queue) poke() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *queue) take() ([]watch.Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	evs := q.evs
	q.evs = nil
	return evs, q.ended
}
