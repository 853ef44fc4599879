package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// orderedNames answers every name of s, in order, checking that they ascend strictly.
func orderedNames(t *testing.T, s *sortedNames) []string {
	t.Helper()
	flat := s.appendAfter(nil, "", s.len()+1)
	if !slices.IsSorted(flat) || len(slices.Compact(slices.Clone(flat))) != len(flat) || len(flat) != s.len() {
		t.Fatalf("%d names, len() %d, not strictly ascending", len(flat), s.len())
	}
	return flat
}

// TestSortedNamesMatchesASortedSet drives a sortedNames and a plain set with the same random
// inserts and removes, and compares them every 500 steps, including reads from random places.
func TestSortedNamesMatchesASortedSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const pool, steps = 5000, 30000
	s := newSortedNames()
	want := map[string]bool{}
	for step := range steps {
		name := fmt.Sprintf("app-%05d", rng.IntN(pool))
		// Grow for the first half, then mostly shrink, so that merges happen too.
		insert := rng.IntN(100) < 70
		if step > steps/2 {
			insert = rng.IntN(100) < 30
		}
		if insert {
			if got := s.insert(name); got == want[name] {
				t.Fatalf("insert(%s) = %v with the name already present = %v", name, got, want[name])
			}
			want[name] = true
		} else {
			if got := s.remove(name); got != want[name] {
				t.Fatalf("remove(%s) = %v with the name present = %v", name, got, want[name])
			}
			delete(want, name)
		}
		if step%500 != 0 {
			continue
		}
		flat := orderedNames(t, s)
		if !slices.Equal(flat, sortedKeys(want)) {
			t.Fatalf("step %d: the set differs from the reference", step)
		}
		after := fmt.Sprintf("app-%05d", rng.IntN(pool))
		n := 1 + rng.IntN(1000)
		if got, exp := s.appendAfter(nil, after, n), namesAfterIn(flat, after, n); !slices.Equal(got, exp) {
			t.Fatalf("appendAfter(%s, %d): got %d names, want %d", after, n, len(got), len(exp))
		}
	}
}

func sortedKeys(set map[string]bool) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// namesAfterIn is appendAfter on a plain sorted slice, the reference.
func namesAfterIn(sorted []string, after string, n int) []string {
	i, found := slices.BinarySearch(sorted, after)
	if found {
		i++
	}
	return sorted[i:min(len(sorted), i+n)]
}

func TestSortedNamesReadsFromAnyPlace(t *testing.T) {
	s := newSortedNames()
	for i := range 3000 {
		s.insert(fmt.Sprintf("n-%05d", i))
	}
	if got, want := s.appendAfter(nil, "n-00999", 2), []string{"n-01000", "n-01001"}; !slices.Equal(got, want) {
		t.Errorf("after a present name: %v, want %v", got, want)
	}
	if got, want := s.appendAfter(nil, "n-00999x", 1), []string{"n-01000"}; !slices.Equal(got, want) {
		t.Errorf("after an absent name: %v, want %v", got, want)
	}
	if got := s.appendAfter(nil, "n-99999", 5); len(got) != 0 {
		t.Errorf("after every name: %v, want none", got)
	}
	if got := s.appendAfter(nil, "", 3010); len(got) != 3000 {
		t.Errorf("from the start: %d names, want 3000", len(got))
	}
	if got := s.appendAfter(nil, "", 0); len(got) != 0 {
		t.Errorf("zero names asked: %v", got)
	}
}

func loan(name, status string) *loansv1alpha1.LoanApplication {
	app := &loansv1alpha1.LoanApplication{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
	if status != "" {
		app.Labels = map[string]string{loansv1alpha1.LabelStatus: status}
	}
	return app
}

func TestNameIndexFollowsTheInformersEvents(t *testing.T) {
	x := newNameIndex()
	expect := func(step, status string, want ...string) {
		t.Helper()
		if got := x.namesAfter(status, "", 100); !slices.Equal(got, want) {
			t.Errorf("%s: names under %q = %v, want %v", step, status, got, want)
		}
	}
	x.OnAdd(loan("b", "pending"), true)
	x.OnAdd(loan("a", "pending"), false)
	x.OnAdd(loan("c", "approved"), false)
	x.OnAdd(loan("d", ""), false)
	expect("add", "pending", "a", "b")
	expect("add", "approved", "c")
	expect("add, unlabelled among all", "", "a", "b", "c", "d")
	expect("add, a value nobody has", "failed")

	x.OnUpdate(loan("a", "pending"), loan("a", "approved"))
	expect("relabel", "pending", "b")
	expect("relabel", "approved", "a", "c")
	expect("relabel", "", "a", "b", "c", "d")

	// An update whose old object is stale (the label had already moved) still files by the new.
	x.OnUpdate(loan("a", "pending"), loan("a", "rejected"))
	expect("relabel from a stale old object", "approved", "c")
	expect("relabel from a stale old object", "rejected", "a")

	x.OnUpdate(loan("d", ""), loan("d", "failed"))
	expect("label added", "failed", "d")
	x.OnUpdate(loan("b", "pending"), loan("b", ""))
	expect("label removed", "pending")
	expect("label removed, still among all", "", "a", "b", "c", "d")

	x.OnDelete(loan("c", "approved"))
	expect("delete", "approved")
	expect("delete", "", "a", "b", "d")

	// A tombstone may carry a stale object: the label it shows is not where the name is filed.
	x.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "ns/a", Obj: loan("a", "pending")})
	expect("tombstone", "rejected")
	expect("tombstone", "", "b", "d")

	x.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "ns/zz", Obj: nil})
	x.OnDelete("not an object")
	expect("unknown deletes change nothing", "", "b", "d")
}

// fakeCache is the lookup of collectPage over a map, standing in for the informer cache.
type fakeCache map[string]*loansv1alpha1.LoanApplication

func (c fakeCache) get(_ context.Context, name string) (*loansv1alpha1.LoanApplication, error) {
	if app, ok := c[name]; ok {
		return app, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Group: loansv1alpha1.GroupVersion.Group, Resource: "loanapplications"}, name)
}

// indexedCache files n applications named app-00000... under status in both an index and a
// fake cache.
func indexedCache(n int, status string) (*nameIndex, fakeCache) {
	x, c := newNameIndex(), fakeCache{}
	for i := range n {
		app := loan(fmt.Sprintf("app-%05d", i), status)
		x.OnAdd(app, true)
		c[app.Name] = app
	}
	return x, c
}

func pageNames(pg page) []string {
	names := make([]string, 0, len(pg.items))
	for _, app := range pg.items {
		names = append(names, app.Name)
	}
	return names
}

func TestCollectPagePagesAcrossPageBoundaries(t *testing.T) {
	ctx := context.Background()
	for _, total := range []int{0, 1, 999, 1000, 1001, 2000, 2500} {
		t.Run(fmt.Sprint(total), func(t *testing.T) {
			x, c := indexedCache(total, "approved")
			var seen []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > total/1000+1 {
					t.Fatal("paging does not end")
				}
				pg, err := collectPage(ctx, x, "approved", after, 1000, c.get)
				if err != nil {
					t.Fatal(err)
				}
				seen = append(seen, pageNames(pg)...)
				if pg.next == "" {
					break
				}
				if pg.next != seen[len(seen)-1] || len(pg.items) != 1000 {
					t.Fatalf("a page of %d ending at %s says next %s", len(pg.items), seen[len(seen)-1], pg.next)
				}
				after = pg.next
			}
			if want := x.namesAfter("", "", total+1); !slices.Equal(seen, want) {
				t.Errorf("the pages hold %d names, want every one of %d once in order", len(seen), len(want))
			}
		})
	}
}

func TestCollectPageSkipsWhatTheIndexHasNotCaughtUpWith(t *testing.T) {
	ctx := context.Background()
	x, c := indexedCache(10, "approved")
	// The cache already holds these changes; the index has not seen their events yet.
	c["app-00001"] = loan("app-00001", "rejected")
	c["app-00003"] = loan("app-00003", "")
	delete(c, "app-00004")

	pg, err := collectPage(ctx, x, "approved", "", 3, c.get)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pageNames(pg), []string{"app-00000", "app-00002", "app-00005"}; !slices.Equal(got, want) {
		t.Errorf("page = %v, want %v (a full page past the skipped)", got, want)
	}
	if pg.next != "app-00005" {
		t.Errorf("next = %q, want app-00005", pg.next)
	}

	// The relabelled one still shows among all (its label does not matter there), the deleted
	// one does not.
	pg, err = collectPage(ctx, x, "", "", 10, c.get)
	if err != nil {
		t.Fatal(err)
	}
	if got := pageNames(pg); len(got) != 9 || slices.Contains(got, "app-00004") || pg.next != "" {
		t.Errorf("all = %v (next %q), want the 9 still cached and no next", got, pg.next)
	}

	// When everything after the page is stale, the page is the last: no next.
	for _, name := range []string{"app-00006", "app-00007", "app-00008", "app-00009"} {
		c[name] = loan(name, "pending")
	}
	pg, err = collectPage(ctx, x, "approved", "app-00002", 3, c.get)
	if err != nil {
		t.Fatal(err)
	}
	if got := pageNames(pg); !slices.Equal(got, []string{"app-00005"}) || pg.next != "" {
		t.Errorf("page = %v (next %q), want only app-00005 and no next", got, pg.next)
	}
}

func TestCollectPageReturnsTheCachesErrors(t *testing.T) {
	x, _ := indexedCache(3, "approved")
	broken := errors.New("the cache is gone")
	_, err := collectPage(context.Background(), x, "approved", "", 10,
		func(context.Context, string) (*loansv1alpha1.LoanApplication, error) { return nil, broken })
	if !errors.Is(err, broken) {
		t.Errorf("err = %v, want %v", err, broken)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := collectPage(ctx, x, "approved", "", 10, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("with an ended context: err = %v, want context.Canceled", err)
	}
}
