package gateway

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	toolscache "k8s.io/client-go/tools/cache"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// Kinds of change the event stream reports.
const (
	changeCreated   = "created"
	changeSubmitted = "submitted"
	changeDecided   = "decided"
)

// DefaultEventWindow is how many changes the feed keeps for streams to resume from.
const DefaultEventWindow = 10_000

// change is one change of an application, encoded once for every stream that sends it.
type change struct {
	seq    uint64
	kind   string
	status string
	// data is the application's REST view as JSON, one line.
	data []byte
}

// feed is the gateway's record of what happens to applications, fed by the informer of the
// cache: the latest changes in a ring (for the event streams, which read it at their own pace)
// and the waiters on one application's decision. It adds no API server call: the informer's
// watch is its only input.
//
// Its handler runs on the informer's goroutine and never blocks on a client: it appends to the
// ring, wakes the streams (a non-blocking send on a channel of one) and closes the channel of
// the application's waiters.
type feed struct {
	// epoch tells this gateway's event ids from another's (or from this one's before a
	// restart), whose sequence numbers mean nothing here.
	epoch string

	mu   sync.Mutex
	ring []change
	// next is the sequence number of the next change; ring[seq % len(ring)] holds seq while
	// seq >= next-len(ring).
	next uint64
	// ringBytes is the size of the encoded changes the ring holds: a cost bounded by the
	// window, not by the applications cached, which the benchmark weighs apart.
	ringBytes int
	streams   map[chan struct{}]struct{}
	// waits holds, per application name, the channel closed when it is decided.
	waits map[string]*decisionWait
}

// decisionWait is the channel that the waiters on one application share, and how many they are.
type decisionWait struct {
	decided chan struct{}
	waiters int
	// seenAt is when the cache saw the decision: set before decided is closed, read after.
	seenAt time.Time
}

func newFeed(window int) *feed {
	if window <= 0 {
		window = DefaultEventWindow
	}
	return &feed{
		epoch:   strconv.FormatInt(time.Now().UnixNano(), 36),
		ring:    make([]change, window),
		next:    1,
		streams: map[chan struct{}]struct{}{},
		waits:   map[string]*decisionWait{},
	}
}

var _ toolscache.ResourceEventHandler = (*feed)(nil)

// OnAdd records a new application. The informer's initial list is not news: a client lists.
func (f *feed) OnAdd(obj any, isInInitialList bool) {
	app, ok := obj.(*loansv1alpha1.LoanApplication)
	if !ok || isInInitialList {
		return
	}
	f.record(changeCreated, app)
	if isDecided(app) {
		f.wake(app.Name)
	}
}

// OnUpdate records a submission or a decision; other updates (conditions, labels written with
// the same meaning) are not changes a client follows.
func (f *feed) OnUpdate(oldObj, newObj any) {
	prev, ok1 := oldObj.(*loansv1alpha1.LoanApplication)
	app, ok2 := newObj.(*loansv1alpha1.LoanApplication)
	if !ok1 || !ok2 {
		return
	}
	switch {
	case isDecided(app) && !isDecided(prev):
		f.record(changeDecided, app)
		f.wake(app.Name)
	case app.Status.SubmittedAt != nil && prev.Status.SubmittedAt == nil:
		f.record(changeSubmitted, app)
	}
}

// OnDelete wakes the waiters of a deleted application, who then find it gone.
func (f *feed) OnDelete(obj any) {
	if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if app, ok := obj.(*loansv1alpha1.LoanApplication); ok {
		f.wake(app.Name)
	}
}

// isDecided reports an application whose REST status is final: the bank has answered, or it
// never will.
func isDecided(app *loansv1alpha1.LoanApplication) bool {
	return viewOf(app).Status != loansv1alpha1.LabelPending
}

// record appends a change to the ring and wakes every stream.
func (f *feed) record(kind string, app *loansv1alpha1.LoanApplication) {
	view := viewOf(app)
	data, err := json.Marshal(view)
	if err != nil {
		return // a view of strings and times always encodes
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	slot := &f.ring[f.next%uint64(len(f.ring))]
	f.ringBytes += cap(data) - cap(slot.data)
	*slot = change{seq: f.next, kind: kind, status: view.Status, data: data}
	f.next++
	for wake := range f.streams {
		select {
		case wake <- struct{}{}:
		default: // already woken; it reads every change since when it runs
		}
	}
}

// wake answers the waiters of the application.
func (f *feed) wake(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if w, ok := f.waits[name]; ok {
		w.seenAt = time.Now()
		close(w.decided)
		delete(f.waits, name)
	}
}

// awaitDecision registers a waiter on the application; its decided channel is closed when it
// is decided (or deleted), and its seenAt then tells when. release must be called when the
// waiter is done, at once when its client goes away, so that the registration costs nothing
// after.
func (f *feed) awaitDecision(name string) (wait *decisionWait, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.waits[name]
	if !ok {
		w = &decisionWait{decided: make(chan struct{})}
		f.waits[name] = w
	}
	w.waiters++
	return w, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		w.waiters--
		if w.waiters == 0 && f.waits[name] == w {
			delete(f.waits, name)
		}
	}
}

// subscribe registers a stream: the channel is woken after each new change. unsubscribe must be
// called when the stream ends.
func (f *feed) subscribe() (wake chan struct{}, unsubscribe func()) {
	wake = make(chan struct{}, 1)
	f.mu.Lock()
	f.streams[wake] = struct{}{}
	f.mu.Unlock()
	return wake, func() {
		f.mu.Lock()
		delete(f.streams, wake)
		f.mu.Unlock()
	}
}

// heldBytes is the size of the encoded changes in the ring.
func (f *feed) heldBytes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ringBytes
}

// latest is the sequence number of the latest change (0: none yet).
func (f *feed) latest() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next - 1
}

// since appends to dst the changes after seq, at most max of them, and reports false when some
// of those changes have already left the ring: the reader is too far behind to continue.
func (f *feed) since(dst []change, seq uint64, limit int) ([]change, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	size := uint64(len(f.ring))
	if f.next > size && seq+1 < f.next-size {
		return dst, false
	}
	for s := seq + 1; s < f.next && len(dst) < limit; s++ {
		dst = append(dst, f.ring[s%size])
	}
	return dst, true
}

// eventID is the SSE id of the change seq: the feed's epoch and the sequence number.
func (f *feed) eventID(seq uint64) string {
	return f.epoch + "." + strconv.FormatUint(seq, 10)
}

// resumePoint reads a Last-Event-ID: the sequence number to continue after, or false when the
// id is not one of this feed's (another gateway's, or this one's before a restart).
func (f *feed) resumePoint(lastEventID string) (uint64, bool) {
	epoch, seq, found := strings.Cut(lastEventID, ".")
	if !found || epoch != f.epoch {
		return 0, false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return 0, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	size := uint64(len(f.ring))
	if n >= f.next || (f.next > size && n+1 < f.next-size) {
		return 0, false // not given out yet, or the changes after it are gone
	}
	return n, true
}
