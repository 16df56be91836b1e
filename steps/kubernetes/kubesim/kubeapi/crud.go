package kubeapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"
)

const maxBody = 3 << 20 // the API server's default request size limit

var deleteOptionsKind = metav1.SchemeGroupVersion.WithKind("DeleteOptions")

// serveResource answers a request to a resource's collection, object or status by its
// verb, told from the method and the path: watch, get, list, create, update, patch,
// delete or deletecollection. The verb is set as soon as it is known, for the request log.
func (s *Server) serveResource(r *request) {
	if r.res.review {
		s.serveReview(r)
		return
	}
	cl := r.res.client(s.cs, r.ns)
	switch {
	case r.Method == http.MethodGet && r.watch:
		r.verb = "watch"
		if o, ok := s.watchOptions(r); ok {
			s.serveWatch(r, cl, o)
		}
	case r.Method == http.MethodGet && r.name != "":
		r.verb = "get"
		s.serveGet(r, cl)
	case r.Method == http.MethodGet:
		r.verb = "list"
		var o metav1.ListOptions
		if s.params(r, &o) {
			s.serveList(r, cl, o)
		}
	case r.Method == http.MethodPost && r.name == "" && r.sub == "":
		r.verb = "create"
		s.serveCreate(r, cl)
	case r.Method == http.MethodPut && r.name != "":
		r.verb = "update"
		s.serveUpdate(r, cl)
	case r.Method == http.MethodPatch && r.name != "":
		r.verb = "patch"
		s.servePatch(r, cl)
	case r.Method == http.MethodDelete:
		s.serveDelete(r, cl) // delete or deletecollection, once the options are read
	default:
		r.verb = "unsupported"
		s.writeError(r, apierrors.NewMethodNotSupported(r.res.gvr.GroupResource(), r.Method))
	}
}

// watchOptions are a watch's list options; /watch/.../{name} watches one object.
func (s *Server) watchOptions(r *request) (metav1.ListOptions, bool) {
	var o metav1.ListOptions
	if !s.params(r, &o) {
		return o, false
	}
	if r.name != "" {
		o.FieldSelector = fields.AndSelectors(fields.OneTermEqualSelector("metadata.name", r.name), mustFields(o.FieldSelector)).String()
	}
	return o, true
}

// serveGet answers one object; a namespace kubesim does not store may be implied.
func (s *Server) serveGet(r *request, cl ops) {
	var o metav1.GetOptions
	if !s.params(r, &o) {
		return
	}
	obj, err := cl.get(r.Context(), r.name, o)
	if apierrors.IsNotFound(err) && r.res.kind == "Namespace" {
		obj, err = s.impliedNamespace(r, r.name, err)
	}
	s.reply(r, http.StatusOK, obj, err)
}

// serveCreate creates the body's object, or with dryRun says whether it could be.
func (s *Server) serveCreate(r *request, cl ops) {
	var o metav1.CreateOptions
	obj, ok := s.body(r)
	if !ok || !s.params(r, &o) {
		return
	}
	m, _ := meta.Accessor(obj)
	if err := s.checkCreate(r, m); err != nil {
		s.writeError(r, err)
		return
	}
	if dryRun(o.DryRun) {
		if _, err := cl.get(r.Context(), m.GetName(), metav1.GetOptions{}); err == nil {
			s.writeError(r, apierrors.NewAlreadyExists(r.res.gvr.GroupResource(), m.GetName()))
			return
		}
		s.reply(r, http.StatusCreated, obj, nil)
		return
	}
	out, err := cl.create(r.Context(), obj, o)
	s.reply(r, http.StatusCreated, out, err)
}

// serveUpdate replaces the object (or its status) named on the URL with the body's.
func (s *Server) serveUpdate(r *request, cl ops) {
	var o metav1.UpdateOptions
	obj, ok := s.body(r)
	if !ok || !s.params(r, &o) {
		return
	}
	m, _ := meta.Accessor(obj)
	if m.GetName() != r.name {
		s.writeError(r, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), r.name)))
		return
	}
	if err := s.checkNamespace(r, m); err != nil {
		s.writeError(r, err)
		return
	}
	if dryRun(o.DryRun) {
		_, err := cl.get(r.Context(), r.name, metav1.GetOptions{})
		s.reply(r, http.StatusOK, obj, err)
		return
	}
	out, err := cl.update(r.Context(), obj, o, r.sub == "status")
	s.reply(r, http.StatusOK, out, err)
}

// serveDelete deletes the object named on the URL, or the collection's objects the
// selectors match; its options come from the body, then from the query.
func (s *Server) serveDelete(r *request, cl ops) {
	var o metav1.DeleteOptions
	if b, ok := s.read(r); !ok {
		return
	} else if len(b) > 0 {
		if _, _, err := scheme.Codecs.UniversalDeserializer().Decode(b, &deleteOptionsKind, &o); err != nil {
			s.writeError(r, apierrors.NewBadRequest("delete options: "+err.Error()))
			return
		}
	}
	if !s.params(r, &o) {
		return
	}
	if r.name == "" {
		r.verb = "deletecollection"
		var lo metav1.ListOptions
		if s.params(r, &lo) {
			s.reply(r, http.StatusOK, nil, cl.deleteCollection(r.Context(), o, lo))
		}
		return
	}
	r.verb = "delete"
	if dryRun(o.DryRun) {
		_, err := cl.get(r.Context(), r.name, metav1.GetOptions{})
		s.reply(r, http.StatusOK, nil, err)
		return
	}
	s.reply(r, http.StatusOK, nil, cl.delete(r.Context(), r.name, o))
}

// reply writes obj (in the resource's group version), a Success status when obj is nil, or
// the error as a Status.
func (s *Server) reply(r *request, code int, obj runtime.Object, err error) {
	if err != nil {
		s.writeError(r, err)
		return
	}
	if obj == nil {
		s.writeObject(r, http.StatusOK, &metav1.Status{Status: metav1.StatusSuccess,
			Details: &metav1.StatusDetails{Name: r.name, Group: r.res.gvr.Group, Kind: r.res.gvr.Resource}}, metav1.Unversioned)
		return
	}
	s.writeObject(r, code, obj, r.res.gvr.GroupVersion())
}

// params decodes the query into an options struct with client-go's parameter codec.
func (s *Server) params(r *request, into runtime.Object) bool {
	if err := scheme.ParameterCodec.DecodeParameters(r.URL.Query(), r.res.gvr.GroupVersion(), into); err != nil {
		s.writeError(r, apierrors.NewBadRequest(err.Error()))
		return false
	}
	return true
}

func (s *Server) read(r *request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(r.w, r.Body, maxBody))
	if err != nil {
		s.writeError(r, apierrors.NewRequestEntityTooLargeError(err.Error()))
		return nil, false
	}
	return b, true
}

// body decodes a JSON, YAML or protobuf object of the resource's kind (kind and apiVersion
// default to the URL's when the body leaves them out).
func (s *Server) body(r *request) (runtime.Object, bool) {
	b, ok := s.read(r)
	if !ok {
		return nil, false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil {
		if _, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), mt); !ok {
			s.writeError(r, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "", schema.GroupResource{}, "", "unsupported content type "+mt, 0, false))
			return nil, false
		}
	}
	gvk := r.res.gvk()
	obj, got, err := scheme.Codecs.UniversalDeserializer().Decode(b, &gvk, r.res.newObj())
	if err != nil {
		s.writeError(r, apierrors.NewBadRequest("decoding the body: "+err.Error()))
		return nil, false
	}
	if *got != gvk {
		s.writeError(r, apierrors.NewBadRequest(fmt.Sprintf("the body is a %s, not a %s", got, gvk)))
		return nil, false
	}
	return obj, true
}

// checkNamespace sets an empty namespace from the URL and refuses a different one, as the
// API server does.
func (s *Server) checkNamespace(r *request, m metav1.Object) error {
	if !r.res.namespaced {
		return nil
	}
	if m.GetNamespace() == "" {
		m.SetNamespace(r.ns)
	}
	if r.ns == "" || m.GetNamespace() != r.ns {
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	return nil
}

// checkCreate is the part of the API server's validation clients meet most: a valid name.
func (s *Server) checkCreate(r *request, m metav1.Object) error {
	if err := s.checkNamespace(r, m); err != nil {
		return err
	}
	var errs field.ErrorList
	name := field.NewPath("metadata", "name")
	switch {
	case m.GetName() == "" && m.GetGenerateName() == "":
		errs = append(errs, field.Required(name, "name or generateName is required"))
	case m.GetName() != "":
		for _, msg := range validation.IsDNS1123Subdomain(m.GetName()) {
			errs = append(errs, field.Invalid(name, m.GetName(), msg))
		}
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(r.res.gvk().GroupKind(), m.GetName(), errs)
	}
	return nil
}

func dryRun(v []string) bool { return len(v) > 0 }

func mustFields(sel string) fields.Selector {
	s, err := fields.ParseSelector(sel)
	if err != nil {
		return fields.Everything()
	}
	return s
}

// selectors parses the list options' label and field selectors; only metadata.name and
// metadata.namespace are field labels here (the fake clientset ignores field selectors, so
// the facade applies them).
func selectors(o metav1.ListOptions) (labels.Selector, fields.Selector, error) {
	ls, err := labels.Parse(o.LabelSelector)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest("labelSelector: " + err.Error())
	}
	fs, err := fields.ParseSelector(o.FieldSelector)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest("fieldSelector: " + err.Error())
	}
	for _, req := range fs.Requirements() {
		if req.Field != "metadata.name" && req.Field != "metadata.namespace" {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
		}
	}
	return ls, fs, nil
}

func matches(obj runtime.Object, ls labels.Selector, fs fields.Selector) bool {
	m, err := meta.Accessor(obj)
	if err != nil {
		return false
	}
	return ls.Matches(labels.Set(m.GetLabels())) && fs.Matches(fields.Set{"metadata.name": m.GetName(), "metadata.namespace": m.GetNamespace()})
}

// serveList lists, filters by the selectors and pages by limit/continue (an offset token).
func (s *Server) serveList(r *request, cl ops, o metav1.ListOptions) {
	ls, fs, err := selectors(o)
	if err != nil {
		s.writeError(r, err)
		return
	}
	offset := 0
	if o.Continue != "" {
		b, err := base64.RawURLEncoding.DecodeString(o.Continue)
		if err == nil {
			offset, err = strconv.Atoi(string(b))
		}
		if err != nil || offset < 0 {
			s.writeError(r, apierrors.NewBadRequest("invalid continue token"))
			return
		}
	}
	limit := o.Limit
	o.Limit, o.Continue = 0, ""
	list, err := cl.list(r.Context(), o)
	if err != nil {
		s.writeError(r, err)
		return
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		s.writeError(r, apierrors.NewInternalError(err))
		return
	}
	if r.res.kind == "Namespace" {
		items = s.withImpliedNamespaces(r, items)
	}
	kept := items[:0]
	for _, it := range items {
		if matches(it, ls, fs) {
			kept = append(kept, it)
		}
	}
	sort.SliceStable(kept, func(i, j int) bool { return key(kept[i]) < key(kept[j]) })
	if offset > len(kept) {
		offset = len(kept)
	}
	kept = kept[offset:]
	lm, _ := meta.ListAccessor(list)
	lm.SetContinue("")
	if limit > 0 && int64(len(kept)) > limit {
		kept = kept[:limit]
		lm.SetContinue(base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(offset + int(limit)))))
	}
	if err := meta.SetList(list, kept); err != nil {
		s.writeError(r, apierrors.NewInternalError(err))
		return
	}
	s.writeObject(r, http.StatusOK, list, r.res.gvr.GroupVersion())
}

func key(obj runtime.Object) string {
	m, _ := meta.Accessor(obj)
	return m.GetNamespace() + "/" + m.GetName()
}

// servePatch forwards JSON, merge and strategic merge patches to the clientset (kubesim's
// fake applies them with the same json-patch and strategicpatch helpers the API server
// uses). A malformed patch is refused with 400 before it gets there; a patch that cannot be
// applied is 422. With dryRun the patch is applied here, on a copy, and nothing is written.
func (s *Server) servePatch(r *request, cl ops) {
	var o metav1.PatchOptions
	if !s.params(r, &o) {
		return
	}
	b, ok := s.read(r)
	if !ok {
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	pt := types.PatchType(mt)
	switch pt {
	case types.JSONPatchType:
		if _, err := jsonpatch.DecodePatch(b); err != nil {
			s.writeError(r, apierrors.NewBadRequest(err.Error()))
			return
		}
	case types.MergePatchType, types.StrategicMergePatchType:
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			s.writeError(r, apierrors.NewBadRequest(err.Error()))
			return
		}
	case types.ApplyPatchType:
		if o.FieldManager == "" {
			s.writeError(r, apierrors.NewBadRequest("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"))
			return
		}
	default:
		s.writeError(r, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", r.res.gvr.GroupResource(), r.name,
			fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s, %s, %s",
				types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyPatchType), 0, false))
		return
	}
	var sub []string
	if r.sub != "" {
		sub = []string{r.sub}
	}
	if dryRun(o.DryRun) {
		out, err := s.applyPatch(r, cl, pt, b)
		s.reply(r, http.StatusOK, out, err)
		return
	}
	out, err := cl.patch(r.Context(), r.name, pt, b, o, sub...)
	if err != nil {
		var as apierrors.APIStatus
		if !asStatus(err, &as) {
			err = apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "patch", r.res.gvr.GroupResource(), r.name, err.Error(), 0, false)
		}
	}
	s.reply(r, http.StatusOK, out, err)
}

// applyPatch computes a patch's result without writing (dry run).
func (s *Server) applyPatch(r *request, cl ops, pt types.PatchType, patch []byte) (runtime.Object, error) {
	cur, err := cl.get(r.Context(), r.name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	old, err := json.Marshal(cur)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	var patched []byte
	switch pt {
	case types.JSONPatchType:
		p, _ := jsonpatch.DecodePatch(patch)
		patched, err = p.Apply(old)
	case types.MergePatchType:
		patched, err = jsonpatch.MergePatch(old, patch)
	case types.StrategicMergePatchType:
		patched, err = strategicpatch.StrategicMergePatch(old, patch, r.res.newObj())
	default:
		return nil, apierrors.NewBadRequest("dry run of " + string(pt) + " is not supported")
	}
	if err != nil {
		return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "patch", r.res.gvr.GroupResource(), r.name, err.Error(), 0, false)
	}
	out := r.res.newObj()
	if err := json.Unmarshal(patched, out); err != nil {
		return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "patch", r.res.gvr.GroupResource(), r.name, err.Error(), 0, false)
	}
	return out, nil
}

func asStatus(err error, as *apierrors.APIStatus) bool {
	for e := err; e != nil; {
		if st, ok := e.(apierrors.APIStatus); ok {
			*as = st
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// impliedNamespace answers a Get of a namespace the clientset does not store but that
// exists in practice: default, kube-system, or one holding a served object (kubesim seeds
// workloads without Namespace objects).
func (s *Server) impliedNamespace(r *request, name string, notFound error) (runtime.Object, error) {
	for _, ns := range s.impliedNamespaces(r) {
		if ns == name {
			return namespace(name), nil
		}
	}
	return nil, notFound
}

func (s *Server) withImpliedNamespaces(r *request, items []runtime.Object) []runtime.Object {
	have := map[string]bool{}
	for _, it := range items {
		if m, err := meta.Accessor(it); err == nil {
			have[m.GetName()] = true
		}
	}
	for _, ns := range s.impliedNamespaces(r) {
		if !have[ns] {
			items = append(items, namespace(ns))
		}
	}
	return items
}

func (s *Server) impliedNamespaces(r *request) []string {
	seen := map[string]bool{metav1.NamespaceDefault: true, metav1.NamespaceSystem: true}
	for _, res := range resources {
		if !res.namespaced {
			continue
		}
		l, err := res.client(s.cs, "").list(r.Context(), metav1.ListOptions{})
		if err != nil {
			continue
		}
		items, _ := meta.ExtractList(l)
		for _, it := range items {
			if m, err := meta.Accessor(it); err == nil && m.GetNamespace() != "" {
				seen[m.GetNamespace()] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelMetadataName: name}},
		Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
	}
}

// serveReview answers POST .../selfsubjectaccessreviews with the clientset's answer (kubesim:
// its Deny and Allow rules) and 201, as the API server does; a review has no name and is
// not stored, so it has no other verb.
func (s *Server) serveReview(r *request) {
	if r.Method != http.MethodPost || r.name != "" || r.watch {
		r.verb = "unsupported"
		s.writeError(r, apierrors.NewMethodNotSupported(r.res.gvr.GroupResource(), r.Method))
		return
	}
	r.verb = "create"
	var o metav1.CreateOptions
	obj, ok := s.body(r)
	if !ok || !s.params(r, &o) {
		return
	}
	out, err := orNil(s.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(r.Context(), obj.(*authorizationv1.SelfSubjectAccessReview), o))
	s.reply(r, http.StatusCreated, out, err)
}
