package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsjson "sigs.k8s.io/json"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// store reads applications from an informer cache of one namespace, past it through a direct
// client when the cache does not hold one yet, and creates them through a REST client of the
// resource (postApplication). It never updates or deletes: the gateway's role allows neither.
//
// Lists are served in pages ordered by name. A page must not cost the whole namespace: listing
// every match from the cache, then sorting it, cost O(n log n) per page, 545 ms (p99) for a page
// of 1,000 among 100,000 applications. So an event handler on the cache's informer keeps the
// names in order, per status label value and for all (nameIndex), and a page reads the next
// names there and fetches only those from the cache: O(log n + page) per page, whatever n is.
type store struct {
	namespace string
	cache     cache.Cache
	direct    client.Client
	// post creates applications: a REST client of the resource, see postApplication.
	post rest.Interface
	// names orders the cached applications' names; indexed reports when it has seen the
	// informer's initial list.
	names   *nameIndex
	indexed toolscache.ResourceEventHandlerRegistration
	// synced is set once the cache and names both hold every application, so that a synced
	// store never answers a short list.
	synced atomic.Bool
	// created holds what this gateway created, until the watch brings it to the cache: a client
	// that reads back what it has just created is answered even before then, without a call to
	// the API server that under load the bounded fallback would refuse.
	created *utilcache.LRUExpireCache
}

// A created application is kept at most this long, and at most this many of them: the watch
// brings one to the cache within milliseconds, and the cache is read first.
const (
	createdTTL  = 30 * time.Second
	createdSize = 4096
)

// applicationsResource is LoanApplication's resource name in the API server's paths.
const applicationsResource = "loanapplications"

// newStore builds the cache (not yet started) and the direct client. The REST mapping of
// LoanApplication is given, not discovered, so that building them needs no API server: the
// gateway starts, and answers 503, even while the API server is away.
func newStore(cfg *rest.Config, namespace string, changes toolscache.ResourceEventHandler) (*store, error) {
	cfg = withSharedRateLimiter(cfg)
	scheme := runtime.NewScheme()
	if err := loansv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{loansv1alpha1.GroupVersion})
	resource := loansv1alpha1.GroupVersion.WithResource(applicationsResource)
	singular := loansv1alpha1.GroupVersion.WithResource("loanapplication")
	for _, kind := range []string{"LoanApplication", "LoanApplicationList"} {
		mapper.AddSpecific(loansv1alpha1.GroupVersion.WithKind(kind), resource, singular, meta.RESTScopeNamespace)
	}

	c, err := cache.New(rest.CopyConfig(cfg), cache.Options{
		Scheme:            scheme,
		Mapper:            mapper,
		DefaultNamespaces: map[string]cache.Config{namespace: {}},
		// The cache keeps only what the gateway serves (slim.go): it holds every application.
		DefaultTransform: slimForCache(namespace),
	})
	if err != nil {
		return nil, err
	}
	created := utilcache.NewLRUExpireCache(createdSize)
	names, indexed, err := indexNames(c, changes, created)
	if err != nil {
		return nil, err
	}
	direct, err := client.New(rest.CopyConfig(cfg), client.Options{Scheme: scheme, Mapper: mapper})
	if err != nil {
		return nil, err
	}
	post, err := newPostClient(cfg)
	if err != nil {
		return nil, err
	}
	return &store{namespace: namespace, cache: c, direct: direct, post: post, names: names, indexed: indexed, created: created}, nil
}

// indexNames registers a name index, the handler of changes and the forgetting of created
// on the cache's LoanApplication informer, and answers the index with the registration that
// tells when it has received the initial list. The informer is created here, not started: it
// starts with the cache, and the index then receives the initial list before any watch event.
func indexNames(c cache.Cache, changes toolscache.ResourceEventHandler,
	created *utilcache.LRUExpireCache) (*nameIndex, toolscache.ResourceEventHandlerRegistration, error) {
	informer, err := c.GetInformer(context.Background(), &loansv1alpha1.LoanApplication{})
	if err != nil {
		return nil, nil, err
	}
	if _, err := informer.AddEventHandler(changes); err != nil {
		return nil, nil, err
	}
	if _, err := informer.AddEventHandler(forgetCreated(created)); err != nil {
		return nil, nil, err
	}
	names := newNameIndex()
	indexed, err := informer.AddEventHandler(names)
	return names, indexed, err
}

// syncPollInterval is how often start checks whether the name index has seen the initial list;
// it follows the cache's sync within a few milliseconds.
const syncPollInterval = 10 * time.Millisecond

// start runs the cache until ctx ends, and marks the store synced once the cache has listed
// every application and the name index has received them all: the cache alone syncs before its
// handlers have seen every object, and a list then would miss some.
func (s *store) start(ctx context.Context) error {
	go func() {
		if !s.cache.WaitForCacheSync(ctx) {
			return
		}
		err := wait.PollUntilContextCancel(ctx, syncPollInterval, true, func(context.Context) (bool, error) {
			return s.indexed.HasSynced(), nil
		})
		if err == nil {
			s.synced.Store(true)
		}
	}()
	return s.cache.Start(ctx)
}

// forgetCreated drops an application from created once the cache holds it: the cache is read
// first, so the copy would only weigh on the heap until it expired, and an expired entry stays
// until a later create pushes it out, which after a burst of creates may be never.
func forgetCreated(created *utilcache.LRUExpireCache) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if app, ok := obj.(*loansv1alpha1.LoanApplication); ok {
			created.Remove(app.Name)
		}
	}}
}

// create writes app to the API server; it is durable in etcd when this returns.
func (s *store) create(ctx context.Context, app *loansv1alpha1.LoanApplication) error {
	app.Namespace = s.namespace
	if err := s.postApplication(ctx, app); err != nil {
		return err
	}
	kept := app.DeepCopy()
	slim(kept, s.namespace)
	s.created.Add(app.Name, kept, createdTTL)
	// The watch may have brought it to the cache before the create's answer came back, and
	// forgetCreated then ran too early. The informer stores an object before it tells its
	// handlers, so either the cache holds it now or forgetCreated has yet to run.
	if s.synced.Load() {
		if _, err := s.cached(ctx, app.Name); err == nil {
			s.created.Remove(app.Name)
		}
	}
	return nil
}

// withSharedRateLimiter answers a copy of cfg whose clients all draw on one token bucket of
// cfg.QPS and cfg.Burst: each REST client built from a config without a RateLimiter makes a
// bucket of its own, and the gateway's limit is on all its calls together.
func withSharedRateLimiter(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	if cfg.RateLimiter == nil && cfg.QPS > 0 {
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	return cfg
}

// newPostClient is the REST client of the LoanApplication resource that creates take. Its
// scheme knows the API server's Status (group "", version v1), so that a refusal is decoded
// into a *StatusError with its causes, as any client-go client's is.
func newPostClient(cfg *rest.Config) (rest.Interface, error) {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	cfg = rest.CopyConfig(cfg)
	cfg.APIPath = "/apis"
	cfg.GroupVersion = &loansv1alpha1.GroupVersion
	cfg.ContentType = runtime.ContentTypeJSON
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	return rest.RESTClientFor(cfg)
}

// postApplication creates app and fills it from the API server's answer. It is a create on the
// gateway's busiest path, so it skips what a generic client spends per call on an object whose
// type it already knows: converting the options to query parameters, finding the answer's
// kind with a whole extra pass over its JSON, and zeroing and re-typing the target.
func (s *store) postApplication(ctx context.Context, app *loansv1alpha1.LoanApplication) error {
	app.APIVersion, app.Kind = loansv1alpha1.GroupVersion.String(), "LoanApplication"
	body, err := json.Marshal(app)
	if err != nil {
		return err
	}
	result := s.post.Post().Namespace(s.namespace).Resource(applicationsResource).Body(body).Do(ctx)
	if err := result.Error(); err != nil { // Error, not Raw's error: it decodes the API server's Status
		return err
	}
	answer, _ := result.Raw()
	created := &loansv1alpha1.LoanApplication{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(answer, created); err != nil {
		return fmt.Errorf("decoding the API server's answer to a create: %w", err)
	}
	*app = *created
	return nil
}

// justCreated answers an application this gateway created in the last createdTTL, as the API
// server answered its create (no later change): for reads that the cache cannot answer yet.
func (s *store) justCreated(name string) (*loansv1alpha1.LoanApplication, bool) {
	v, ok := s.created.Get(name)
	if !ok {
		return nil, false
	}
	return v.(*loansv1alpha1.LoanApplication), true
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

// fromCache reads one application from the cache alone, without a deep copy (the object is only
// encoded): NotFound when the cache does not hold it, errNotSynced before the cache has synced.
func (s *store) fromCache(ctx context.Context, name string) (*loansv1alpha1.LoanApplication, error) {
	if !s.synced.Load() {
		return nil, errNotSynced
	}
	return s.cached(ctx, name)
}

// fromAPIServer reads one application from the API server.
func (s *store) fromAPIServer(ctx context.Context, name string) (*loansv1alpha1.LoanApplication, error) {
	app := &loansv1alpha1.LoanApplication{}
	return app, s.direct.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: name}, app)
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
// name, starting after the name `after`. It reads the page's names from the name index and each
// object from the cache: O(log n + limit). The objects are the cache's own (no deep copy): they
// are only encoded, never modified.
func (s *store) list(ctx context.Context, status, after string, limit int) (page, error) {
	if !s.synced.Load() {
		return page{}, errNotSynced
	}
	return collectPage(ctx, s.names, status, after, limit, s.cached)
}

// cached reads one application from the cache, without a deep copy.
func (s *store) cached(ctx context.Context, name string) (*loansv1alpha1.LoanApplication, error) {
	app := &loansv1alpha1.LoanApplication{}
	key := client.ObjectKey{Namespace: s.namespace, Name: name}
	return app, s.cache.Get(ctx, key, app, client.UnsafeDisableDeepCopy)
}

// lookup reads one application by name; NotFound when there is none.
type lookup func(ctx context.Context, name string) (*loansv1alpha1.LoanApplication, error)

// collectPage answers at most limit applications after `after` filed under status in names,
// each read by get. The index can lag the cache by an event, so an application that get no
// longer finds, or finds with another label, is skipped and the next name taken in its place. To
// know whether more follow without a second pass, it collects one more than limit.
//
// Each round takes only as many names as are still missing and moves strictly forward, so the
// loop ends after at most every name of the set; without lag it runs once.
func collectPage(ctx context.Context, names *nameIndex, status, after string, limit int, get lookup) (page, error) {
	items := make([]*loansv1alpha1.LoanApplication, 0, limit+1)
	for len(items) <= limit {
		if err := ctx.Err(); err != nil {
			return page{}, err
		}
		batch := names.namesAfter(status, after, limit+1-len(items))
		if len(batch) == 0 {
			break
		}
		if batch[0] <= after {
			// Never with a correct index; without this check such a bug would spin forever.
			return page{}, fmt.Errorf("the name index answered %q after %q", batch[0], after)
		}
		for _, name := range batch {
			app, err := get(ctx, name)
			if apierrors.IsNotFound(err) {
				continue // deleted since the index filed it
			}
			if err != nil {
				return page{}, err
			}
			if status == "" || app.Labels[loansv1alpha1.LabelStatus] == status {
				items = append(items, app)
			}
		}
		after = batch[len(batch)-1]
	}
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
