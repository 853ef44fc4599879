package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// statusIndex is the cache's index of applications by their status label, so that a list by
// status touches only the matching objects.
const statusIndex = "metadata.labels.status"

// store reads applications from an informer cache of one namespace and writes them through a
// direct client. It never updates or deletes: the gateway's role allows neither.
type store struct {
	namespace string
	cache     cache.Cache
	direct    client.Client
	synced    atomic.Bool
}

// newStore builds the cache (not yet started) and the direct client. The REST mapping of
// LoanApplication is given, not discovered, so that building them needs no API server: the
// gateway starts, and answers 503, even while the API server is away.
func newStore(cfg *rest.Config, namespace string) (*store, error) {
	scheme := runtime.NewScheme()
	if err := loansv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{loansv1alpha1.GroupVersion})
	resource := loansv1alpha1.GroupVersion.WithResource("loanapplications")
	singular := loansv1alpha1.GroupVersion.WithResource("loanapplication")
	for _, kind := range []string{"LoanApplication", "LoanApplicationList"} {
		mapper.AddSpecific(loansv1alpha1.GroupVersion.WithKind(kind), resource, singular, meta.RESTScopeNamespace)
	}

	c, err := cache.New(rest.CopyConfig(cfg), cache.Options{
		Scheme:            scheme,
		Mapper:            mapper,
		DefaultNamespaces: map[string]cache.Config{namespace: {}},
		// Nobody reads managed fields; dropping them saves about a fifth of the cache's heap.
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, err
	}
	if err := c.IndexField(context.Background(), &loansv1alpha1.LoanApplication{}, statusIndex, statusLabelOf); err != nil {
		return nil, err
	}
	direct, err := client.New(rest.CopyConfig(cfg), client.Options{Scheme: scheme, Mapper: mapper})
	if err != nil {
		return nil, err
	}
	return &store{namespace: namespace, cache: c, direct: direct}, nil
}

func statusLabelOf(obj client.Object) []string {
	if v, ok := obj.GetLabels()[loansv1alpha1.LabelStatus]; ok {
		return []string{v}
	}
	return nil
}

// start runs the cache until ctx ends, and marks the store synced once the cache has listed
// every application.
func (s *store) start(ctx context.Context) error {
	go func() {
		if s.cache.WaitForCacheSync(ctx) {
			s.synced.Store(true)
		}
	}()
	return s.cache.Start(ctx)
}

// create writes app to the API server; it is durable in etcd when this returns.
func (s *store) create(ctx context.Context, app *loansv1alpha1.LoanApplication) error {
	app.Namespace = s.namespace
	return s.direct.Create(ctx, app)
}

// get reads one application from the cache, and from the API server when the cache does not
// have it (yet): a GET right after the POST that created it must find it, even when the watch
// has not delivered it to the cache.
func (s *store) get(ctx context.Context, name string) (*loansv1alpha1.LoanApplication, error) {
	key := client.ObjectKey{Namespace: s.namespace, Name: name}
	app := &loansv1alpha1.LoanApplication{}
	if s.synced.Load() {
		err := s.cache.Get(ctx, key, app, client.UnsafeDisableDeepCopy)
		if !apierrors.IsNotFound(err) {
			return app, err
		}
	}
	err := s.direct.Get(ctx, key, app)
	return app, err
}

// errNotSynced is returned by list while the cache has not yet listed every application.
var errNotSynced = errors.New("the gateway's cache of applications is not synced yet")

// page is one page of a list: at most limit applications after the name `after`, by name.
type page struct {
	items []*loansv1alpha1.LoanApplication
	// next is the name of the last item when more follow, else "".
	next string
}

// list answers the applications with the status label (all when status is ""), ordered by
// name, starting after the name `after`. The objects are the cache's own (no deep copy): they
// are only encoded, never modified.
func (s *store) list(ctx context.Context, status, after string, limit int) (page, error) {
	if !s.synced.Load() {
		return page{}, errNotSynced
	}
	opts := []client.ListOption{client.InNamespace(s.namespace), client.UnsafeDisableDeepCopy}
	if status != "" {
		opts = append(opts, client.MatchingFields{statusIndex: status})
	}
	var all loansv1alpha1.LoanApplicationList
	if err := s.cache.List(ctx, &all, opts...); err != nil {
		return page{}, err
	}
	items := make([]*loansv1alpha1.LoanApplication, 0, len(all.Items))
	for i := range all.Items {
		if all.Items[i].Name > after {
			items = append(items, &all.Items[i])
		}
	}
	// Names are unique within the namespace, so the order is total and stable across pages.
	slices.SortFunc(items, func(a, b *loansv1alpha1.LoanApplication) int { return strings.Compare(a.Name, b.Name) })
	if len(items) <= limit {
		return page{items: items}, nil
	}
	return page{items: items[:limit], next: items[limit-1].Name}, nil
}

// encodeContinue makes the opaque continue token that resumes a list after the name.
func encodeContinue(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(name))
}

// decodeContinue reads a continue token back into the name to resume after.
func decodeContinue(token string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(validation.IsDNS1123Subdomain(string(raw))) > 0 {
		return "", false
	}
	return string(raw), true
}
