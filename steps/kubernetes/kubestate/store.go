package kubestate

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cessda/runbook/engine"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Sizes. A ConfigMap holds at most 1 MiB (data, keys and metadata together).
const (
	// DefaultChunkSize is where the journal rolls over to its next ConfigMap. Small on
	// purpose: every synced append rewrites its whole chunk as a new etcd revision (kept
	// until compaction, every 5 minutes by default), so etcd's writes grow with the
	// chunk's fill. On a real API server 2,000 synced 150-byte events grew etcd's database
	// by 411 MiB with 512 KiB chunks and by 21 MiB with 64 KiB chunks.
	DefaultChunkSize = 64 << 10
	// maxObjectData is the most one journal ConfigMap's data may hold: a single event
	// larger than a chunk gets a chunk of its own, up to this, leaving room for metadata.
	maxObjectData = 900 << 10
	// DefaultFlushSize is how much unsynced journal a Store buffers before writing it.
	DefaultFlushSize = 64 << 10
	// reportKey and reportGzKey hold the report; a report too big for a ConfigMap as text
	// is kept gzipped (it is JSON and shrinks about tenfold).
	reportKey     = "report.json"
	reportGzKey   = "report.json.gz"
	maxReportText = 768 << 10
)

// RequestTimeout bounds each API request a Store makes. The Store does not use the run's
// context: a cancelled run must still write its last events.
var RequestTimeout = 30 * time.Second

// Store is an engine.Store that keeps a run in ConfigMaps of one namespace, so any machine
// with access to it can see, lock and resume the run:
//
//   - the journal in runbook-<run-id>-journal-<n> (n = 0, 1, ...), each holding batches of
//     JSON-lines events under keys 000000000.jsonl, 000000001.jsonl, ... (numbered across
//     the whole journal), rolling over to the next ConfigMap at ChunkSize; a chunk that
//     has a successor is annotated sealed, so a missing last chunk is noticed;
//   - the report in runbook-<run-id>-report (report.json, or report.json.gz in binaryData
//     when large), labelled with its product and status for listing.
//
// Each batch is one merge patch that adds a key and names the chunk's resourceVersion, so
// a write is atomic (no torn lines) and a second process writing the same run gets a 409
// Conflict instead of interleaving. Unsynced appends are buffered (DefaultFlushSize);
// a synced append is on the API server when Append returns.
//
// ConfigMaps rather than Secrets: the engine redacts secrets before they reach a store,
// the report is meant to be read by the people releasing (kubectl get configmap shows it
// as text, a Secret only base64-encoded), and read access to Secrets is usually, and
// rightly, narrower than the access a release team needs to see its runs.
type Store struct {
	cs        kubernetes.Interface
	namespace string
	runID     string
	// ChunkSize is where a journal chunk rolls over (DefaultChunkSize).
	ChunkSize int
	// FlushSize is how many bytes of unsynced events are buffered (DefaultFlushSize).
	FlushSize int

	mu       sync.Mutex
	product  string
	pending  [][]byte // unsynced event lines, each with its newline
	pendingN int
	chunk    int    // index of the current chunk; -1 before the first
	chunkRV  string // its resourceVersion
	chunkLen int    // bytes of data in it
	seq      int    // number of the next batch
	reportRV string
	// reportSum is the last report written: the same document again (a run's end writes
	// it twice) is not another etcd revision.
	reportSum [sha256.Size]byte
	closed    bool
}

var _ engine.Store = (*Store)(nil)

// Open opens the state of run runID in namespace: a new run has none yet; a run being
// resumed is found from its journal chunks.
func Open(ctx context.Context, cs kubernetes.Interface, namespace, runID string) (*Store, error) {
	if err := checkName("run id", runID); err != nil {
		return nil, err
	}
	s := &Store{cs: cs, namespace: namespace, runID: runID, ChunkSize: DefaultChunkSize, FlushSize: DefaultFlushSize, chunk: -1}
	chunks, err := s.chunks(ctx)
	if err != nil {
		return nil, err
	}
	if n := len(chunks); n > 0 {
		last := chunks[n-1]
		s.chunk, s.chunkRV, s.chunkLen = n-1, last.ResourceVersion, dataLen(last)
		s.product = chunks[0].Labels[labelProduct]
		first, _ := strconv.Atoi(last.Annotations[annoFirstSeq])
		s.seq = first + len(last.Data)
	}
	return s, nil
}

// RunID is the run this store keeps.
func (s *Store) RunID() string { return s.runID }

func dataLen(cm *corev1.ConfigMap) int {
	n := 0
	for k, v := range cm.Data {
		n += len(k) + len(v)
	}
	return n
}

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), RequestTimeout)
}

// Append implements engine.Store.
//
// The engine asks for sync only where the journal must be durable (before a step that
// writes begins, and when the run stops, waits or ends): the events of read-only and
// skipped steps in between go to the API server together, in one batch, as one etcd
// revision.
func (s *Store) Append(ev *engine.Event, sync bool) error {
	b, err := engine.AppendEvent(nil, ev)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("kubestate: run %s: append after close", s.runID)
	}
	if ev.Kind == "run" && ev.Header != nil && s.product == "" {
		s.product = ev.Header.Product
	}
	s.pending = append(s.pending, b)
	s.pendingN += len(b)
	if !sync && s.pendingN < s.FlushSize {
		return nil
	}
	return s.flush()
}

// flush writes the buffered events, as few batches as the chunk size allows.
func (s *Store) flush() error {
	for len(s.pending) > 0 {
		key := fmt.Sprintf("%09d.jsonl", s.seq)
		fit := func(room int) (n, size int) {
			size = len(key)
			for n < len(s.pending) && size+len(s.pending[n]) <= room {
				size += len(s.pending[n])
				n++
			}
			return n, size - len(key)
		}
		fresh := s.chunk < 0
		n, size := fit(s.ChunkSize - s.chunkLen)
		if n == 0 && !fresh {
			fresh = true // roll over to the next chunk
			n, size = fit(s.ChunkSize)
		}
		if n == 0 { // one event bigger than a chunk gets a chunk of its own
			if len(key)+len(s.pending[0]) > maxObjectData {
				return s.tooBig(len(s.pending[0]))
			}
			n, size = 1, len(s.pending[0])
		}
		batch := string(bytes.Join(s.pending[:n], nil))
		var err error
		if fresh {
			err = s.createChunk(s.chunk+1, key, batch)
		} else {
			err = s.patchChunk(key, batch)
		}
		if err != nil {
			return err
		}
		s.seq++
		s.pending = s.pending[n:]
		s.pendingN -= size
	}
	s.pending, s.pendingN = nil, 0
	return nil
}

func (s *Store) tooBig(n int) error {
	return fmt.Errorf("kubestate: run %s: a journal event of %d bytes is more than a ConfigMap holds (about %d KiB); the step's outputs or recorded values are too large", s.runID, n, maxObjectData>>10)
}

func (s *Store) labels(part string) map[string]string {
	l := map[string]string{labelManagedBy: managedBy, labelRun: s.runID, labelPart: part}
	if s.product != "" {
		l[labelProduct] = s.product
	}
	return l
}

// createChunk starts journal chunk n with its first batch, then seals the chunk before
// it. A crash between the two leaves an unsealed chunk with a successor, which reads fine.
// Before either, the rollover is claimed on the chunk before, naming the resourceVersion
// last seen: creating a new chunk has no precondition of its own, so without the claim a
// second writer whose view is stale would start a successor numbered from its stale view
// (and seal the chunk under the writer ahead), breaking the journal instead of getting a
// conflict.
func (s *Store) createChunk(n int, key, batch string) error {
	if s.chunk >= 0 {
		if err := s.claimRollover(n); err != nil {
			return err
		}
	}
	name := ChunkName(s.runID, n)
	l := s.labels("journal")
	l[labelChunk] = strconv.Itoa(n)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.namespace, Labels: l,
			Annotations: map[string]string{annoFirstSeq: strconv.Itoa(s.seq)}},
		Data: map[string]string{key: batch},
	}
	cms := s.cs.CoreV1().ConfigMaps(s.namespace)
	var got *corev1.ConfigMap
	err := s.retry(func(ctx context.Context) error {
		var err error
		got, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// Our own create whose answer was lost, or another writer's chunk.
			if cur, gerr := cms.Get(ctx, name, metav1.GetOptions{}); gerr == nil && cur.Data[key] == batch && len(cur.Data) == 1 {
				got, err = cur, nil
			} else if gerr == nil {
				return s.conflict(name)
			}
		}
		return err
	})
	if err != nil {
		return apiErrorOrSelf(err, "create configmap "+name, s.namespace)
	}
	prev := s.chunk
	s.chunk, s.chunkRV, s.chunkLen = n, got.ResourceVersion, len(key)+len(batch)
	if prev >= 0 {
		patch := []byte(`{"metadata":{"annotations":{"` + annoSealed + `":"true"}}}`)
		pname := ChunkName(s.runID, prev)
		err := s.retry(func(ctx context.Context) error {
			_, err := cms.Patch(ctx, pname, types.MergePatchType, patch, metav1.PatchOptions{})
			return err
		})
		if err != nil {
			return apiErrorOrSelf(err, "seal configmap "+pname, s.namespace)
		}
	}
	return nil
}

// claimRollover marks the current chunk as rolling over to chunk n, naming its
// resourceVersion last seen (so a stale writer gets a 409). The value includes that
// resourceVersion, so the patch always changes the chunk (a no-op patch would leave its
// resourceVersion, and the writer behind would not notice).
func (s *Store) claimRollover(n int) error {
	claim := ChunkName(s.runID, n) + " after resourceVersion " + s.chunkRV
	return s.patchCurrent(map[string]any{"annotations": map[string]string{annoRollover: claim}}, nil,
		func(cur *corev1.ConfigMap) bool {
			return cur.Annotations[annoRollover] == claim && dataLen(cur) == s.chunkLen
		})
}

// patchChunk adds a batch to the current chunk, naming the resourceVersion last seen.
func (s *Store) patchChunk(key, batch string) error {
	err := s.patchCurrent(nil, map[string]string{key: batch},
		func(cur *corev1.ConfigMap) bool { return cur.Data[key] == batch })
	if err == nil {
		s.chunkLen += len(key) + len(batch)
	}
	return err
}

// patchCurrent merge-patches the current chunk with metadata and data, on the condition
// that it is still at the resourceVersion last seen. On a 409 the chunk is read again:
// if ours (the answer to our own patch was lost) says the patch is there, it was; any
// other change is another writer's, and a conflict.
func (s *Store) patchCurrent(meta map[string]any, data map[string]string, ours func(*corev1.ConfigMap) bool) error {
	name := ChunkName(s.runID, s.chunk)
	cms := s.cs.CoreV1().ConfigMaps(s.namespace)
	m := map[string]any{"resourceVersion": s.chunkRV}
	for k, v := range meta {
		m[k] = v
	}
	body := map[string]any{"metadata": m}
	if data != nil {
		body["data"] = data
	}
	patch, _ := json.Marshal(body)
	var got *corev1.ConfigMap
	err := s.retry(func(ctx context.Context) error {
		var err error
		got, err = cms.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		if apierrors.IsConflict(err) {
			if cur, gerr := cms.Get(ctx, name, metav1.GetOptions{}); gerr == nil && ours(cur) {
				got, err = cur, nil
			} else if gerr == nil {
				return s.conflict(name)
			}
		}
		return err
	})
	if err != nil {
		return apiErrorOrSelf(err, "patch configmap "+name, s.namespace)
	}
	s.chunkRV = got.ResourceVersion
	return nil
}

type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }

func (s *Store) conflict(name string) error {
	return &conflictError{fmt.Sprintf("kubestate: journal of run %s: configmap %s in namespace %s was written by another process; is the run being resumed elsewhere? (the release lock should prevent this)", s.runID, name, s.namespace)}
}

func apiErrorOrSelf(err error, what, ns string) error {
	if _, ok := err.(*conflictError); ok {
		return err
	}
	return apiError(err, what, ns)
}

// retry sends a request again after a transient failure.
func (s *Store) retry(f func(ctx context.Context) error) error {
	var err error
	for i := 1; i <= requestAttempts; i++ {
		ctx, cancel := s.ctx()
		err = f(ctx)
		cancel()
		if err == nil || !transient(err) {
			return err
		}
		if i < requestAttempts {
			time.Sleep(retryBackoff(i))
		}
	}
	return engine.Transient(err)
}

// WriteReport implements engine.Store: one update of the report ConfigMap, which the API
// server applies whole or not at all.
func (s *Store) WriteReport(doc []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := sha256.Sum256(doc)
	if s.reportRV != "" && sum == s.reportSum {
		return nil
	}
	var head struct {
		Product string `json:"product"`
		Status  string `json:"status"`
	}
	_ = json.Unmarshal(doc, &head)
	if s.product == "" {
		s.product = head.Product
	}
	name := ReportName(s.runID)
	l := s.labels("report")
	if head.Status != "" {
		l[labelStatus] = head.Status
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.namespace, Labels: l}}
	if len(doc) <= maxReportText {
		cm.Data = map[string]string{reportKey: string(doc)}
	} else {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(doc)
		zw.Close()
		if buf.Len() > maxObjectData {
			return fmt.Errorf("kubestate: run %s: the report is %d bytes (%d gzipped), more than a ConfigMap holds", s.runID, len(doc), buf.Len())
		}
		cm.BinaryData = map[string][]byte{reportGzKey: buf.Bytes()}
	}
	cms := s.cs.CoreV1().ConfigMaps(s.namespace)
	err := s.retry(func(ctx context.Context) error {
		if s.reportRV == "" {
			got, err := cms.Create(ctx, cm, metav1.CreateOptions{})
			if err == nil {
				s.reportRV = got.ResourceVersion
				return nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return err
			}
		}
		for i := 0; i < 5; i++ {
			if s.reportRV == "" {
				cur, err := cms.Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				s.reportRV = cur.ResourceVersion
			}
			cm.ResourceVersion = s.reportRV
			got, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) {
				// The report is a projection of the journal (which the lock and the journal's
				// own concurrency protect): the newest write wins.
				s.reportRV = ""
				continue
			}
			if apierrors.IsNotFound(err) {
				s.reportRV = ""
				got, err = cms.Create(ctx, cm, metav1.CreateOptions{})
			}
			if err != nil {
				return err
			}
			s.reportRV = got.ResourceVersion
			return nil
		}
		return fmt.Errorf("kubestate: report %s kept changing under us", name)
	})
	if err == nil {
		s.reportSum = sum
	}
	return apiError(err, "write configmap "+name, s.namespace)
}

// Events implements engine.Store: every chunk, in order, checked for gaps.
func (s *Store) Events() ([]*engine.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.flush(); err != nil {
		return nil, err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	chunks, err := s.chunks(ctx)
	if err != nil {
		return nil, err
	}
	var out []*engine.Event
	seq := 0
	for _, cm := range chunks {
		if first, err := strconv.Atoi(cm.Annotations[annoFirstSeq]); err != nil || first != seq {
			return nil, fmt.Errorf("kubestate: journal of run %s is damaged: configmap %s should start at batch %d but says %q; batches are missing", s.runID, cm.Name, seq, cm.Annotations[annoFirstSeq])
		}
		keys := make([]string, 0, len(cm.Data))
		for k := range cm.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if want := fmt.Sprintf("%09d.jsonl", seq); k != want {
				return nil, fmt.Errorf("kubestate: journal of run %s is damaged: configmap %s has key %s where batch %s should be", s.runID, cm.Name, k, want)
			}
			seq++
			evs, err := decodeBatch(cm.Data[k])
			if err != nil {
				return nil, fmt.Errorf("kubestate: journal of run %s is damaged: configmap %s key %s: %v", s.runID, cm.Name, k, err)
			}
			out = append(out, evs...)
		}
	}
	return out, nil
}

// decodeBatch parses one batch. Batches are written whole by the API server, so unlike a
// file's last line nothing here may be torn: every line must parse.
func decodeBatch(b string) ([]*engine.Event, error) {
	if !strings.HasSuffix(b, "\n") {
		return nil, fmt.Errorf("the batch does not end with a newline (torn)")
	}
	var out []*engine.Event
	for i, line := range strings.Split(strings.TrimSuffix(b, "\n"), "\n") {
		var ev engine.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		out = append(out, &ev)
	}
	return out, nil
}

// chunks lists the journal's ConfigMaps in order and checks that none is missing: the
// numbers run from 0 without a gap and the last is not sealed (a sealed chunk has had a
// successor).
func (s *Store) chunks(ctx context.Context) ([]*corev1.ConfigMap, error) {
	sel := labels.SelectorFromSet(labels.Set{labelRun: s.runID, labelPart: "journal"}).String()
	list, err := s.cs.CoreV1().ConfigMaps(s.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, apiError(err, "list configmaps "+sel, s.namespace)
	}
	byN := map[int]*corev1.ConfigMap{}
	maxN := -1
	for i := range list.Items {
		cm := &list.Items[i]
		n, err := strconv.Atoi(cm.Labels[labelChunk])
		if err != nil || cm.Name != ChunkName(s.runID, n) {
			return nil, fmt.Errorf("kubestate: journal of run %s: configmap %s has a bad %s label %q", s.runID, cm.Name, labelChunk, cm.Labels[labelChunk])
		}
		byN[n] = cm
		maxN = max(maxN, n)
	}
	out := make([]*corev1.ConfigMap, 0, maxN+1)
	for n := 0; n <= maxN; n++ {
		cm, ok := byN[n]
		if !ok {
			return nil, fmt.Errorf("kubestate: journal of run %s is damaged: configmap %s is missing (chunks 0 to %d expected in namespace %s)", s.runID, ChunkName(s.runID, n), maxN, s.namespace)
		}
		out = append(out, cm)
	}
	if maxN >= 0 && out[maxN].Annotations[annoSealed] == "true" {
		return nil, fmt.Errorf("kubestate: journal of run %s is damaged: configmap %s is missing (%s is sealed, so a later chunk was written)", s.runID, ChunkName(s.runID, maxN+1), out[maxN].Name)
	}
	return out, nil
}

// Close implements engine.Store: buffered events are written.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	err := s.flush()
	s.closed = true
	return err
}

// ReadReport returns a run's report document, as last written.
func ReadReport(ctx context.Context, cs kubernetes.Interface, namespace, runID string) ([]byte, error) {
	name := ReportName(runID)
	cm, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, apiError(err, "get configmap "+name, namespace)
	}
	return reportOf(cm)
}

func reportOf(cm *corev1.ConfigMap) ([]byte, error) {
	if s, ok := cm.Data[reportKey]; ok {
		return []byte(s), nil
	}
	if b, ok := cm.BinaryData[reportGzKey]; ok {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("kubestate: configmap %s: %v", cm.Name, err)
		}
		return io.ReadAll(io.LimitReader(zr, 64<<20))
	}
	return nil, fmt.Errorf("kubestate: configmap %s holds no report", cm.Name)
}

// ReadRunStatus returns a run's status from its report ("" when the run has no report).
func ReadRunStatus(ctx context.Context, cs kubernetes.Interface, namespace, runID string) (engine.RunStatus, error) {
	name := ReportName(runID)
	cm, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", apiError(err, "get configmap "+name, namespace)
	}
	if st := cm.Labels[labelStatus]; st != "" {
		return engine.RunStatus(st), nil
	}
	doc, err := reportOf(cm)
	if err != nil {
		return "", err
	}
	var head struct {
		Status engine.RunStatus `json:"status"`
	}
	_ = json.Unmarshal(doc, &head)
	return head.Status, nil
}

// RunInfo is one run of a product, as listed from the report labels.
type RunInfo struct {
	RunID  string
	Status engine.RunStatus
	// Report is the run's report document, as last written (the list carries it, so a
	// listing needs no request per run); nil when it cannot be read.
	Report []byte
}

// ListRuns lists the runs of product (every product when "") that wrote a report in
// namespace, sorted by run id (which starts with the product and the start time).
func ListRuns(ctx context.Context, cs kubernetes.Interface, namespace, product string) ([]RunInfo, error) {
	set := labels.Set{labelManagedBy: managedBy, labelPart: "report"}
	if product != "" {
		set[labelProduct] = product
	}
	list, err := cs.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(set).String()})
	if err != nil {
		return nil, apiError(err, "list configmaps", namespace)
	}
	var out []RunInfo
	for _, cm := range list.Items {
		doc, _ := reportOf(&cm)
		out = append(out, RunInfo{RunID: cm.Labels[labelRun], Status: engine.RunStatus(cm.Labels[labelStatus]), Report: doc})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RunID < out[j].RunID })
	return out, nil
}
