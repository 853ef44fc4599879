package gateway

import (
	"slices"
	"sort"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// maxChunk is the most names one chunk of a sortedNames holds. An insert or delete moves at most
// this many names within its chunk, and only when a chunk splits or merges the chunk headers
// after it (a few hundred at 100,000 names), where one sorted slice would move up to every name.
const maxChunk = 512

// sortedNames is a set of names in ascending order, as a list of sorted chunks: every name of
// chunks[i] sorts before every name of chunks[i+1], and no chunk is empty. Finding a name is two
// binary searches (O(log n)); reading k names in order from there is O(k).
//
// github.com/google/btree would do the same job, but it is not a requirement of this module, and
// adding one for a hundred lines was not worth a new dependency.
type sortedNames struct {
	chunks [][]string
	size   int
}

// len answers how many names the set holds.
func (s *sortedNames) len() int { return s.size }

// firstChunkNotBelow answers the index of the first chunk whose last name is >= name, or
// len(chunks) when every name in the set sorts before name.
func (s *sortedNames) firstChunkNotBelow(name string) int {
	return sort.Search(len(s.chunks), func(i int) bool {
		chunk := s.chunks[i]
		return chunk[len(chunk)-1] >= name
	})
}

// insert adds name and reports whether it was absent.
func (s *sortedNames) insert(name string) bool {
	if len(s.chunks) == 0 {
		s.chunks = [][]string{{name}}
		s.size = 1
		return true
	}
	i := s.firstChunkNotBelow(name)
	if i == len(s.chunks) {
		i-- // beyond every name: it goes at the end of the last chunk
	}
	j, found := slices.BinarySearch(s.chunks[i], name)
	if found {
		return false
	}
	s.chunks[i] = slices.Insert(s.chunks[i], j, name)
	s.size++
	if len(s.chunks[i]) > maxChunk {
		s.split(i)
	}
	return true
}

// split cuts chunk i in two halves. The upper half gets its own array, so that appending to the
// lower one can never overwrite it.
func (s *sortedNames) split(i int) {
	chunk := s.chunks[i]
	half := len(chunk) / 2
	upper := slices.Clone(chunk[half:])
	s.chunks[i] = chunk[:half]
	s.chunks = slices.Insert(s.chunks, i+1, upper)
}

// remove deletes name and reports whether it was present.
func (s *sortedNames) remove(name string) bool {
	i := s.firstChunkNotBelow(name)
	if i == len(s.chunks) {
		return false
	}
	j, found := slices.BinarySearch(s.chunks[i], name)
	if !found {
		return false
	}
	s.chunks[i] = slices.Delete(s.chunks[i], j, j+1)
	s.size--
	s.compact(i)
	return true
}

// compact drops chunk i when it is empty, and merges it into its successor when both fit in one
// chunk while it is under a quarter full, so that deletions cannot leave a long list of tiny
// chunks (which would make every insert move many chunk headers).
func (s *sortedNames) compact(i int) {
	chunk := s.chunks[i]
	switch {
	case len(chunk) == 0:
		s.chunks = slices.Delete(s.chunks, i, i+1)
	case len(chunk) < maxChunk/4 && i+1 < len(s.chunks) && len(chunk)+len(s.chunks[i+1]) <= maxChunk:
		s.chunks[i] = append(chunk, s.chunks[i+1]...)
		s.chunks = slices.Delete(s.chunks, i+1, i+2)
	}
}

// appendAfter appends to dst, in order, at most n names that sort after `after` ("": from the
// first), and answers the extended slice. It costs O(log len + n).
func (s *sortedNames) appendAfter(dst []string, after string, n int) []string {
	// The first chunk holding a name > after is the first whose last name is > after.
	i := sort.Search(len(s.chunks), func(i int) bool {
		chunk := s.chunks[i]
		return chunk[len(chunk)-1] > after
	})
	for ; i < len(s.chunks) && n > 0; i++ {
		chunk := s.chunks[i]
		j, found := slices.BinarySearch(chunk, after)
		if found {
			j++
		}
		take := min(n, len(chunk)-j)
		dst = append(dst, chunk[j:j+take]...)
		n -= take
		after = "" // every later chunk is read from its first name
	}
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
	all sortedNames
	// byStatus holds one set per non-empty value of the status label.
	byStatus map[string]*sortedNames
	// statusOf is the label value each indexed name was filed under ("" when it has none), so
	// that an update or a delete finds the set to take the name out of without trusting the old
	// object, which a tombstone may not carry up to date.
	statusOf map[string]string
}

func newNameIndex() *nameIndex {
	return &nameIndex{byStatus: map[string]*sortedNames{}, statusOf: map[string]string{}}
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
			set = &sortedNames{}
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
	set := &x.all
	if status != "" {
		if set = x.byStatus[status]; set == nil {
			return nil
		}
	}
	return set.appendAfter(make([]string, 0, min(n, set.len())), after, n)
}
