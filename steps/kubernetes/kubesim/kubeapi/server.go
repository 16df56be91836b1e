package kubeapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"mime"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Server serves a kubernetes.Interface over the Kubernetes REST wire contract on loopback.
type Server struct {
	cs           kubernetes.Interface
	token        string
	addr         string
	watchTimeout time.Duration
	maxQueue     int

	ln    net.Listener
	caPEM []byte
	srv   *http.Server
	url   string
	done  chan struct{} // closed by Close: ends open watches
	once  sync.Once
	live  sync.WaitGroup // running handlers

	mu   sync.Mutex
	reqs []Request
}

// Request is one request the server answered, for tests that count calls (the token and
// other headers are not kept).
type Request struct {
	Method string
	Path   string
	Query  string
	Verb   string // get, list, watch, create, update, patch, delete, deletecollection, discovery, version
	Code   int
}

// Option configures Serve.
type Option func(*Server)

// WithToken sets the bearer token clients must send (default: a random one, in Kubeconfig).
func WithToken(token string) Option { return func(s *Server) { s.token = token } }

// WithAddress listens on a fixed loopback address such as "127.0.0.1:6443" (default
// "127.0.0.1:0", a free port), so a long-lived sandbox keeps its kubeconfig valid across
// restarts. Non-loopback hosts are refused.
func WithAddress(addr string) Option { return func(s *Server) { s.addr = addr } }

// WithWatchTimeout sets how long a watch without timeoutSeconds stays open before the
// server ends it and the client re-watches (default 30 minutes, as an API server's
// min-request-timeout).
func WithWatchTimeout(d time.Duration) Option { return func(s *Server) { s.watchTimeout = d } }

// WithWatchQueue sets how many events may wait for a slow watch client before the server
// ends that watch (default 10000); the client then re-lists, as after a real "too slow" cut.
func WithWatchQueue(n int) Option { return func(s *Server) { s.maxQueue = n } }

// Serve starts serving cs on a loopback port. Close stops it.
func Serve(cs kubernetes.Interface, opts ...Option) (*Server, error) {
	s := &Server{cs: cs, addr: "127.0.0.1:0", watchTimeout: 30 * time.Minute, maxQueue: 10000, done: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	if s.token == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		s.token = "kubesim-" + hex.EncodeToString(b)
	}
	host, _, err := net.SplitHostPort(s.addr)
	if err != nil {
		return nil, fmt.Errorf("kubeapi: address %q: %v", s.addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("kubeapi: address %q is not a loopback address", s.addr)
	}
	s.ln, err = net.Listen("tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("kubeapi: listen on %s: %v", s.addr, err)
	}
	cert, caPEM, err := selfSigned()
	if err != nil {
		s.ln.Close()
		return nil, err
	}
	s.caPEM = caPEM
	s.url = "https://" + s.ln.Addr().String()
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}}
	go func() { _ = s.srv.ServeTLS(s.ln, "", "") }()
	return s, nil
}

// selfSigned makes a certificate for the loopback names, its own CA, so kubeconfigs verify
// it (client-go sends a bearer token only over TLS).
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "kubesim", Organization: []string{"runbook kubesim"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost", "kubernetes", "kubernetes.default"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return cert, certPEM, err
}

// URL is the server's base URL, e.g. https://127.0.0.1:40123.
func (s *Server) URL() string { return s.url }

// CAData is the PEM certificate clients must trust (it is in Kubeconfig).
func (s *Server) CAData() []byte { return append([]byte(nil), s.caPEM...) }

// Client is an HTTP client that trusts the server's certificate, for raw requests.
func (s *Server) Client() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.caPEM)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// Token is the bearer token clients must send.
func (s *Server) Token() string { return s.token }

// Close ends open watches, closes every connection and waits for the handlers to return.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		_ = s.srv.Close()
		s.live.Wait()
	})
}

// Requests returns the requests answered so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Kubeconfig is a kubeconfig with one cluster, one user holding the token, and a context
// named contextName (also the current context).
func (s *Server) Kubeconfig(contextName string) []byte {
	b, err := clientcmd.Write(*s.config(contextName))
	if err != nil { // only on an unencodable config, which config never builds
		panic(err)
	}
	return b
}

// WriteKubeconfig writes a kubeconfig (mode 0600) whose contexts all point at this server,
// e.g. "staging-cluster" and "production-cluster"; the first is the current context.
func (s *Server) WriteKubeconfig(path string, contextNames ...string) error {
	if len(contextNames) == 0 {
		contextNames = []string{"kubesim"}
	}
	b, err := clientcmd.Write(*s.config(contextNames...))
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func (s *Server) config(contexts ...string) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubesim"] = &clientcmdapi.Cluster{Server: s.url, CertificateAuthorityData: s.CAData()}
	cfg.AuthInfos["kubesim"] = &clientcmdapi.AuthInfo{Token: s.token}
	for _, name := range contexts {
		cfg.Contexts[name] = &clientcmdapi.Context{Cluster: "kubesim", AuthInfo: "kubesim", Namespace: metav1.NamespaceDefault}
	}
	cfg.CurrentContext = contexts[0]
	return cfg
}

// recorder logs the request when its status is written (a watch is logged when it starts,
// not when it ends) and passes flushes through.
type recorder struct {
	http.ResponseWriter
	code    int
	onWrite func(code int)
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
		r.onWrite(code)
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// request is a parsed API request.
type request struct {
	*http.Request
	w     *recorder
	verb  string
	gv    schema.GroupVersion
	res   *resource
	ns    string
	name  string
	sub   string
	watch bool
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.live.Add(1)
	defer s.live.Done()
	rec := &recorder{ResponseWriter: w}
	req := &request{Request: r, w: rec}
	rec.onWrite = func(code int) {
		s.mu.Lock()
		s.reqs = append(s.reqs, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Verb: req.verb, Code: code})
		s.mu.Unlock()
	}
	switch r.URL.Path {
	case "/healthz", "/livez", "/readyz":
		rec.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(rec, "ok")
		return
	}
	if !s.authorized(r) {
		s.writeError(req, apierrors.NewUnauthorized("Unauthorized"))
		return
	}
	if !acceptsJSON(r.Header.Get("Accept")) {
		s.writeError(req, apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "", schema.GroupResource{}, "", "only application/json responses are served", 0, false))
		return
	}
	s.route(req)
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.token)) == 1
}

// acceptsJSON reads an Accept header the way the API server negotiates: clauses asking for
// another form (as=Table, aggregated discovery) are skipped, so the client falls back to
// plain JSON, which it always also accepts.
func acceptsJSON(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, clause := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(clause))
		if err != nil || params["as"] != "" {
			continue
		}
		switch mt {
		case "application/json", "application/*", "*/*":
			return true
		}
	}
	return false
}

// route answers an authorized request by its path (slashes at either end do not count):
// /version, the discovery documents, or a group version's resources.
//
// The paths are read by hand, not by ServeMux patterns: they are a grammar (api/{version}
// or apis/{group}/{version}, then [watch/][namespaces/{ns}/]{resource}[/{name}[/status]],
// where v1 namespaces/{name}/status is a namespace's own status) that patterns would spell
// out combination by combination, and ServeMux redirects unclean paths ("//", "..") that
// are answered here with a Status like any other path.
func (s *Server) route(r *request) {
	p := strings.Trim(r.URL.Path, "/")
	parts := strings.Split(p, "/")
	switch {
	case p == "version":
		s.serveVersion(r)
	case p == "api" || p == "apis" || len(parts) == 2 && parts[0] == "apis":
		s.serveDiscovery(r, parts)
	default:
		s.routeGroupVersion(r, parts)
	}
}

func (s *Server) serveVersion(r *request) {
	r.verb = "version"
	v := version.Info{Major: "1", Minor: "37", GitVersion: "v1.37.2-kubesim", Platform: goruntime.GOOS + "/" + goruntime.GOARCH, GoVersion: goruntime.Version(), Compiler: goruntime.Compiler}
	r.w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(r.w).Encode(v)
}

// serveDiscovery answers /api (the core group's versions), /apis (the groups) and
// /apis/{group} (a group's versions; 404 for a group not served).
func (s *Server) serveDiscovery(r *request, parts []string) {
	r.verb = "discovery"
	switch {
	case parts[0] == "api":
		s.writeObject(r, http.StatusOK, &metav1.APIVersions{Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: s.ln.Addr().String()}}}, metav1.Unversioned)
	case len(parts) == 1:
		l := &metav1.APIGroupList{}
		for _, gv := range groupVersions {
			if gv.Group != "" {
				l.Groups = append(l.Groups, *apiGroup(gv.Group))
			}
		}
		s.writeObject(r, http.StatusOK, l, metav1.Unversioned)
	default:
		if g := apiGroup(parts[1]); g != nil {
			s.writeObject(r, http.StatusOK, g, metav1.Unversioned)
			return
		}
		s.writeError(r, apierrors.NewNotFound(schema.GroupResource{}, ""))
	}
}

// routeGroupVersion answers /api/{version}/... and /apis/{group}/{version}/...: the group
// version's resource list, or a request to one of its resources.
func (s *Server) routeGroupVersion(r *request, parts []string) {
	gv, rest, ok := splitGroupVersion(parts)
	r.gv = gv
	if !ok || !servesGroupVersion(gv) {
		s.writeError(r, apierrors.NewNotFound(schema.GroupResource{}, ""))
		return
	}
	if len(rest) == 0 {
		r.verb = "discovery"
		s.writeObject(r, http.StatusOK, resourceList(gv), metav1.Unversioned)
		return
	}
	if !s.readResourcePath(r, rest) {
		return
	}
	if q := r.URL.Query().Get("watch"); q == "true" || q == "1" {
		r.watch = true
	}
	s.serveResource(r)
}

// splitGroupVersion reads api/{version} or apis/{group}/{version} off the path's parts.
func splitGroupVersion(parts []string) (gv schema.GroupVersion, rest []string, ok bool) {
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		return schema.GroupVersion{Version: parts[1]}, parts[2:], true
	case len(parts) >= 3 && parts[0] == "apis":
		return schema.GroupVersion{Group: parts[1], Version: parts[2]}, parts[3:], true
	}
	return schema.GroupVersion{}, nil, false
}

// readResourcePath reads [watch/][namespaces/{ns}/]{resource}[/{name}[/status]] into r,
// or answers 404 for a path that names no served resource, object or subresource.
func (s *Server) readResourcePath(r *request, parts []string) bool {
	if parts[0] == "watch" { // the deprecated /watch/ path form
		r.watch = true
		parts = parts[1:]
	}
	if len(parts) >= 3 && parts[0] == "namespaces" && !isNamespaceSubresource(r.gv, parts) {
		r.ns = parts[1]
		parts = parts[2:]
	}
	if len(parts) == 0 || len(parts) > 3 {
		s.writeError(r, apierrors.NewNotFound(schema.GroupResource{}, ""))
		return false
	}
	r.res = lookup(r.gv, parts[0])
	if r.res == nil || (r.ns != "" && !r.res.namespaced) {
		s.writeError(r, apierrors.NewNotFound(schema.GroupResource{Group: r.gv.Group, Resource: parts[0]}, ""))
		return false
	}
	if len(parts) > 1 {
		r.name = parts[1]
	}
	if len(parts) > 2 {
		r.sub = parts[2]
		if r.sub != "status" || !r.res.status {
			s.writeError(r, notFoundSub(r.res.kind, r.sub))
			return false
		}
	}
	return true
}

// isNamespaceSubresource: v1 namespaces/{name}/status (or finalize) is the namespace
// object's own subresource, not a resource in the namespace.
func isNamespaceSubresource(gv schema.GroupVersion, parts []string) bool {
	return gv.Group == "" && len(parts) == 3 && (parts[2] == "status" || parts[2] == "finalize")
}

// writeObject encodes obj as JSON in gv (setting apiVersion and kind from the scheme).
func (s *Server) writeObject(r *request, code int, obj runtime.Object, gv schema.GroupVersion) {
	b, err := runtime.Encode(encoder(gv), obj)
	if err != nil {
		s.writeError(r, apierrors.NewInternalError(err))
		return
	}
	r.w.Header().Set("Content-Type", "application/json")
	r.w.WriteHeader(code)
	_, _ = r.w.Write(b)
}

// encoder is the JSON encoder of gv, from client-go's scheme.
func encoder(gv schema.GroupVersion) runtime.Encoder {
	info, _ := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
	return scheme.Codecs.EncoderForVersion(info.Serializer, gv)
}

// writeError answers with a metav1.Status: its code, or 500 for an error that is not one.
func (s *Server) writeError(r *request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	var st metav1.Status
	var as apierrors.APIStatus
	if errors.As(err, &as) {
		st = as.Status()
	} else {
		st = apierrors.NewInternalError(err).ErrStatus
	}
	if st.Code == 0 {
		st.Code = http.StatusInternalServerError
	}
	st.Status = metav1.StatusFailure
	if st.Details != nil && st.Details.RetryAfterSeconds > 0 {
		r.w.Header().Set("Retry-After", fmt.Sprint(st.Details.RetryAfterSeconds))
	}
	s.writeObject(r, int(st.Code), &st, metav1.Unversioned)
}

func badRequest(err error) error { return apierrors.NewBadRequest(err.Error()) }

func notFoundSub(kind, sub string) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: strings.ToLower(kind) + "s/" + sub}, "")
}
