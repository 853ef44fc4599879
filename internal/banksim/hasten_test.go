package banksim_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lendo/loan-operator/internal/banksim"
)

// postHasten asks the bank to bring its pending decisions forward, and answers the status and
// how many decisions it says it moved.
func postHasten(t *testing.T, bank bankUnderTest, body string) (int, int, []byte) {
	t.Helper()
	status, _, answer := send(t, http.MethodPost, bank.url+"/admin/hasten", body)
	var got struct {
		Hastened int `json:"hastened"`
	}
	_ = json.Unmarshal(answer, &got)
	return status, got.Hastened, answer
}

// submitSpread submits ids one second apart on clock, so that their decisions are spaced by
// their submissions as well as by their drawn delays.
func submitSpread(t *testing.T, bank bankUnderTest, clock *fakeClock, ids []string) {
	t.Helper()
	for _, id := range ids {
		bank.submit(t, id)
		clock.Advance(time.Second)
	}
}

func TestHastenMovesPendingDecisionsEarlierKeepingTheirSpacing(t *testing.T) {
	const seed = 7
	window := banksim.Config{MinDelay: 90 * time.Second, MaxDelay: 120 * time.Second, Seed: seed}
	ids := sequentialIDs(30)

	clock := newFakeClock()
	cfg := window
	cfg.Now = clock.Now
	sim, bank := newSim(t, cfg)
	submitSpread(t, bank, clock, ids)
	hastenedAt := clock.Now()
	status, moved, body := postHasten(t, bank, `{"first_in":"2s"}`)
	if status != http.StatusOK || moved != len(ids) {
		t.Fatalf("POST /admin/hasten: HTTP %d %s, want 200 with %d hastened", status, body, len(ids))
	}
	clock.Advance(2*time.Second - time.Millisecond)
	for _, id := range ids {
		if _, st := bank.job(t, id); st != "pending" {
			t.Fatalf("%s is %s before the first hastened decision is due", id, st)
		}
	}
	clock.Advance(time.Hour)
	hastened := sim.Stats().Decisions

	// The same seed, window and submissions, never hastened: the decisions as drawn.
	twinClock := newFakeClock()
	cfg.Now = twinClock.Now
	twin, twinBank := newSim(t, cfg)
	submitSpread(t, twinBank, twinClock, ids)
	twinClock.Advance(time.Hour)
	drawn := twin.Stats().Decisions

	first, shift := time.Time{}, time.Duration(0)
	for i, id := range ids {
		h, d := hastened[id], drawn[id]
		if h.Status != d.Status {
			t.Errorf("%s decided %s once hastened, want the outcome drawn at submission, %s", id, h.Status, d.Status)
		}
		if i == 0 {
			shift = d.DecidedAt.Sub(h.DecidedAt)
		}
		if got := d.DecidedAt.Sub(h.DecidedAt); got != shift {
			t.Errorf("%s moved %v earlier, %s moved %v: the spacing changed", id, got, ids[0], shift)
		}
		if first.IsZero() || h.DecidedAt.Before(first) {
			first = h.DecidedAt
		}
	}
	if got := first.Sub(hastenedAt); got != 2*time.Second {
		t.Errorf("the first hastened decision came %v after the call, want first_in, 2s", got)
	}
}

func TestHastenNeverPostponesOrMovesAPassedDecision(t *testing.T) {
	clock := newFakeClock()
	sim, bank := newSim(t, banksim.Config{MinDelay: time.Second, MaxDelay: time.Second, Now: clock.Now})
	ids := sequentialIDs(2)
	decided, soon := ids[0], ids[1]
	bank.submit(t, decided)
	clock.Advance(2 * time.Second)
	bank.submit(t, soon) // decided 1 s from now
	before := sim.Stats().Decisions[decided].DecidedAt

	status, moved, body := postHasten(t, bank, `{"first_in":"10s"}`)
	if status != http.StatusOK || moved != 0 {
		t.Fatalf("POST /admin/hasten: HTTP %d %s, want 200 with none hastened", status, body)
	}
	if after := sim.Stats().Decisions[decided].DecidedAt; !after.Equal(before) {
		t.Errorf("a passed decision moved from %v to %v", before, after)
	}
	clock.Advance(time.Second)
	if _, st := bank.job(t, soon); st == "pending" {
		t.Errorf("the application due in 1 s is still pending: hastening postponed it")
	}
}

func TestInvalidHasteningIsRefusedAndMovesNothing(t *testing.T) {
	clock := newFakeClock()
	_, bank := newSim(t, banksim.Config{MinDelay: time.Minute, MaxDelay: time.Minute, Now: clock.Now})
	id := sequentialIDs(1)[0]
	bank.submit(t, id)
	for _, body := range []string{`{"first_in":"-1s"}`, `{"first_in":"25h"}`, `{"first_in":1}`, `{"soon":true}`, `not json`} {
		status, _, answer := postHasten(t, bank, body)
		if status != http.StatusBadRequest || !strings.Contains(string(answer), "invalid hastening: ") {
			t.Errorf("POST /admin/hasten %s: HTTP %d %s, want 400 saying the body is invalid", body, status, answer)
		}
	}
	clock.Advance(time.Minute - time.Millisecond)
	if _, st := bank.job(t, id); st != "pending" {
		t.Errorf("%s is %s before its own minute: a refused hastening moved it", id, st)
	}
}
