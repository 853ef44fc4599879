package banksim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/lendo/loan-operator/internal/banksim"
)

// putAssessment replaces the assessment window through the admin endpoint and returns the
// status and the body.
func putAssessment(t *testing.T, bank bankUnderTest, body string) (int, []byte) {
	t.Helper()
	status, _, answer := send(t, http.MethodPut, bank.url+"/admin/assessment", body)
	return status, answer
}

// assessmentDelays are the drawn assessment delays of ids, from the simulator's record of each
// decision; the clock must have passed every decision moment.
func assessmentDelays(t *testing.T, sim *banksim.Simulator, ids []string) map[string]time.Duration {
	t.Helper()
	decisions := sim.Stats().Decisions
	delays := make(map[string]time.Duration, len(ids))
	for _, id := range ids {
		d, ok := decisions[id]
		if !ok {
			t.Fatalf("no decision on record for %s", id)
		}
		delays[id] = d.DecidedAt.Sub(d.CreatedAt)
	}
	return delays
}

func TestAssessmentChangeAppliesToLaterSubmissionsOnly(t *testing.T) {
	clock := newFakeClock()
	sim, bank := newSim(t, banksim.Config{MinDelay: time.Second, MaxDelay: 2 * time.Second, Now: clock.Now})
	ids := sequentialIDs(41)
	early, late := ids[0], ids[1:]
	bank.submit(t, early)

	status, body := putAssessment(t, bank, `{"min_delay":"90s","max_delay":"120s"}`)
	if want := `{"min_delay":"1m30s","max_delay":"2m0s"}`; status != http.StatusOK || string(body) != want {
		t.Fatalf("PUT /admin/assessment: HTTP %d %s, want 200 %s", status, body, want)
	}
	if _, _, got := send(t, http.MethodGet, bank.url+"/admin/assessment", ""); !bytes.Equal(got, body) {
		t.Errorf("GET /admin/assessment %s, want what the PUT answered, %s", got, body)
	}
	for _, id := range late {
		bank.submit(t, id)
	}

	clock.Advance(2 * time.Second)
	if _, status := bank.job(t, early); status == "pending" {
		t.Errorf("the application submitted before the change is still pending after its 1-2 s window")
	}
	clock.Advance(88*time.Second - time.Millisecond)
	for _, id := range late {
		if _, status := bank.job(t, id); status != "pending" {
			t.Fatalf("%s is %s just before the new 90 s minimum", id, status)
		}
	}

	clock.Advance(30 * time.Second)
	delays := assessmentDelays(t, sim, ids)
	if d := delays[early]; d < time.Second || d > 2*time.Second {
		t.Errorf("the early application took %v, want its own window of 1-2 s", d)
	}
	distinct := make(map[time.Duration]bool)
	for _, id := range late {
		if d := delays[id]; d < 90*time.Second || d > 120*time.Second {
			t.Errorf("%s took %v, want within [90s, 120s]", id, d)
		}
		distinct[delays[id]] = true
	}
	if len(distinct) < len(late)/2 {
		t.Errorf("%d distinct delays among %d applications: the window is not drawn from", len(distinct), len(late))
	}
}

func TestInvalidAssessmentIsRefusedAndChangesNothing(t *testing.T) {
	_, bank := newSim(t, banksim.Config{})
	for _, body := range []string{
		`{"min_delay":"-1s","max_delay":"1s"}`, `{"min_delay":"2s","max_delay":"1s"}`,
		`{"min_delay":"90s"}`, `{"min_delay":"1h","max_delay":"25h"}`, `{"min_delay":"soon","max_delay":"1s"}`,
		`{"min_delay":90,"max_delay":"120s"}`, `{"min":"1s","max_delay":"2s"}`, `not json`,
	} {
		status, answer := putAssessment(t, bank, body)
		var refusal struct{ Error string }
		if status != http.StatusBadRequest || json.Unmarshal(answer, &refusal) != nil ||
			!bytes.HasPrefix([]byte(refusal.Error), []byte("invalid assessment: ")) {
			t.Errorf("PUT /admin/assessment %s: HTTP %d %s, want 400 saying the assessment is invalid", body, status, answer)
		}
	}
	if _, _, got := send(t, http.MethodGet, bank.url+"/admin/assessment", ""); string(got) !=
		`{"min_delay":"5s","max_delay":"20s"}` {
		t.Errorf("assessment after refused changes %s, want the real bank's 5-20 s", got)
	}
}

func TestZeroAssessmentDecidesAtOnce(t *testing.T) {
	clock := newFakeClock()
	_, bank := newSim(t, banksim.Config{Now: clock.Now})
	if status, body := putAssessment(t, bank, `{"min_delay":"0s","max_delay":"0s"}`); status != http.StatusOK {
		t.Fatalf("PUT /admin/assessment: HTTP %d %s", status, body)
	}
	id := sequentialIDs(1)[0]
	bank.submit(t, id)
	if _, status := bank.job(t, id); status == "pending" {
		t.Errorf("pending with a zero window and no time passed, want decided at once")
	}
}

func TestAssessmentStartsFromConfigAndOutlivesReset(t *testing.T) {
	if got := banksim.New(banksim.Config{}).Assessment(); got != (banksim.Assessment{
		MinDelay: banksim.Duration(banksim.DefaultMinDelay), MaxDelay: banksim.Duration(banksim.DefaultMaxDelay)}) {
		t.Errorf("zero Config: assessment %+v, want the real bank's defaults", got)
	}
	sim := banksim.New(banksim.Config{MinDelay: time.Second, MaxDelay: 3 * time.Second})
	if got := sim.Assessment(); got.MinDelay != banksim.Duration(time.Second) || got.MaxDelay != banksim.Duration(3*time.Second) {
		t.Errorf("assessment %+v, want Config's 1-3 s", got)
	}
	changed := banksim.Assessment{MinDelay: banksim.Duration(time.Minute), MaxDelay: banksim.Duration(2 * time.Minute)}
	sim.SetAssessment(changed)
	sim.Reset()
	if got := sim.Assessment(); got != changed {
		t.Errorf("assessment after a reset %+v, want the window set before it, %+v", got, changed)
	}
}

func TestSetAssessmentClampsOutOfRangeBounds(t *testing.T) {
	day := banksim.Duration(banksim.MaxAssessmentDelay)
	for _, tc := range []struct {
		name      string
		set, want banksim.Assessment
	}{
		{"negative bounds become zero", banksim.Assessment{MinDelay: -5, MaxDelay: -1}, banksim.Assessment{}},
		{"a max below the min is raised to it", banksim.Assessment{MinDelay: 10, MaxDelay: 3}, banksim.Assessment{MinDelay: 10, MaxDelay: 10}},
		{"bounds above a day come down to a day",
			banksim.Assessment{MinDelay: 2 * day, MaxDelay: 3 * day}, banksim.Assessment{MinDelay: day, MaxDelay: day}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := banksim.New(banksim.Config{})
			sim.SetAssessment(tc.set)
			if got := sim.Assessment(); got != tc.want {
				t.Errorf("SetAssessment(%+v): %+v, want %+v", tc.set, got, tc.want)
			}
		})
	}
}
