package gateway

import (
	"sync"

	"github.com/google/btree"

	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// btreeDegree is the B-tree's degree: nodes of up to 2·degree-1 names. 32 keeps a tree of
// 100,000 names four levels deep, with nodes that fit a few cache lines of string headers.
const btreeDegree = 32

// sortedNames is a set of names in ascending order, a B-tree: an insert or a delete costs
// O(log n) however the names arrive (creates come in random name order), and reading k names in
// order from any name costs O(log n + k). Concurrent reads are safe; writes need the caller's
// lock.
type sortedNames struct {
	tree *btree.BTreeG[string]
}

func newSortedNames() *sortedNames {
	return &sortedNames{tree: btree.NewOrderedG[string](btreeDegree)}
}

// len answers how many names the set holds.
func (s *sortedNames) len() int { return s.tree.Len() }

// insert adds name and reports whether it was absent.
func (s *sortedNames) insert(name string) bool {
	_, present := s.tree.ReplaceOrInsert(name)
	return !present
}

// remove deletes name and reports whether it was present.
func (s *sortedNames) remove(name string) bool {
	_, present := s.tree.Delete(name)
	return present
}

// appendAfter appends to dst, in order, at most n names that sort after `after` ("": from the
// first), and answers the extended slice.
func (s *sortedNames) appendAfter(dst []string, after string, n int) []string {
	if n <= 0 {
		return dst
	}
	s.tree.AscendGreaterOrEqual(after, func(name string) bool {
		if name == after {
			return true // resume strictly after it
		}
		dst = append(dst, name)
		n--
		return n > 0
	})
	return dst
}

// nameIndex keeps the names of the cached applications ordered by name, in one sortedNames for
// all of them and one per value of the status label, so that a page of a list by status reads
// its names in O(log n + page) instead of listing and sorting every match. It is the event
// handler of the cache's LoanApplication informer: the informer's goroutine writes it, the HTTP
// handlers read it, under a RWMutex held only while names are copied in or out.
//
// It holds names only (the cache holds the objects), keyed by name alone because the cache
// watches one namespace. It can lag the cache by an event, so its readers check each object
// they fetch (see collectPage).
type nameIndex struct {
	mu  sync.RWMutex
	all *sortedNames
	// byStatus holds one set per non-empty value of the status label.
	byStatus map[string]*sortedNames
	// statusOf is the label value each indexed name was filed under ("" when it has none), so
	// that an update or a delete finds the set to take the name out of without trusting the old
	// object, which a tombstone may not carry up to date.
	statusOf map[string]string
}

func newNameIndex() *nameIndex {
	return &nameIndex{all: newSortedNames(), byStatus: map[string]*sortedNames{}, statusOf: map[string]string{}}
}

var _ toolscache.ResourceEventHandler = (*nameIndex)(nil)

// OnAdd files a new application (or one of the informer's initial list).
func (x *nameIndex) OnAdd(obj any, _ bool) {
	if name, status, ok := nameAndStatus(obj); ok {
		x.put(name, status)
	}
}

// OnUpdate moves an application whose status label changed; other updates change nothing.
func (x *nameIndex) OnUpdate(_, newObj any) {
	if name, status, ok := nameAndStatus(newObj); ok {
		x.put(name, status)
	}
}

// OnDelete forgets an application. A DeletedFinalStateUnknown tombstone (the watch missed the
// delete and a relist found the object gone) is forgotten by the key it carries.
func (x *nameIndex) OnDelete(obj any) {
	if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		if _, name, err := toolscache.SplitMetaNamespaceKey(tombstone.Key); err == nil {
			x.forget(name)
		}
		return
	}
	if name, _, ok := nameAndStatus(obj); ok {
		x.forget(name)
	}
}

// nameAndStatus reads the name and status label of an informer's object.
func nameAndStatus(obj any) (name, status string, ok bool) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", "", false
	}
	return m.GetName(), m.GetLabels()[loansv1alpha1.LabelStatus], true
}

// put files name under status, moving it when it was filed under another. Most updates (status
// writes) keep the label, so they are answered under the read lock alone.
func (x *nameIndex) put(name, status string) {
	x.mu.RLock()
	filed, known := x.statusOf[name]
	x.mu.RUnlock()
	if known && filed == status {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if filed, known := x.statusOf[name]; known {
		x.removeFromStatus(name, filed)
	}
	x.statusOf[name] = status
	x.all.insert(name)
	if status != "" {
		set := x.byStatus[status]
		if set == nil {
			set = newSortedNames()
			x.byStatus[status] = set
		}
		set.insert(name)
	}
}

// forget removes name from every set.
func (x *nameIndex) forget(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	filed, known := x.statusOf[name]
	if !known {
		return
	}
	x.removeFromStatus(name, filed)
	delete(x.statusOf, name)
	x.all.remove(name)
}

// removeFromStatus takes name out of the set of status; the caller holds the write lock.
func (x *nameIndex) removeFromStatus(name, status string) {
	if set := x.byStatus[status]; set != nil {
		set.remove(name)
	}
}

// namesAfter copies out at most n names after `after`, in order: of every application when
// status is "", else of those filed under status.
func (x *nameIndex) namesAfter(status, after string, n int) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	set := x.all
	if status != "" {
		if set = x.byStatus[status]; set == nil {
			return nil
		}
	}
	return set.appendAfter(make([]string, 0, min(n, set.len())), after, n)
}
