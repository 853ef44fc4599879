package controller

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// pollSchedule remembers, in memory only, when each pending application is next due for a poll.
//
// Status is not rewritten on every poll (that would be one API write per poll), so without
// this a reconcile triggered by something else than the planned requeue (a label edit, a resync,
// a duplicate timer) could not tell whether it is time to ask the bank. Losing the schedule in a
// restart is harmless: firstPollDue then spreads the overdue polls over one interval.
type pollSchedule struct {
	mu  sync.Mutex
	due map[types.NamespacedName]plannedPoll
}

type plannedPoll struct {
	uid types.UID // guards against a deleted and re-created object of the same name
	at  time.Time
}

func newPollSchedule() *pollSchedule {
	return &pollSchedule{due: map[types.NamespacedName]plannedPoll{}}
}

// next returns when the object with this uid is due, and whether a poll is planned at all.
func (s *pollSchedule) next(key types.NamespacedName, uid types.UID) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.due[key]
	if !ok || p.uid != uid {
		return time.Time{}, false
	}
	return p.at, true
}

func (s *pollSchedule) plan(key types.NamespacedName, uid types.UID, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.due[key] = plannedPoll{uid: uid, at: at}
}

func (s *pollSchedule) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.due, key)
}
