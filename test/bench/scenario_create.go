package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// createRounds is how many alternating rounds each side of scenario 2 gets: interleaving them
// spreads whatever else the shared machine does over both sides.
const createRounds = 4

// createBatchBound bounds one round of creates.
const createBatchBound = 10 * time.Minute

// createComparison is scenario 2: creates through the gateway against direct client-go creates
// of the same objects at the same concurrency, with the controller stopped so that neither side
// competes with its work. Gateway creates go to the gateway's namespace, direct ones to their
// own; both are deleted afterwards.
func (b *bench) createComparison(ctx context.Context) error {
	if err := b.sys.stack.Controllers[0].Stop(); err != nil {
		return fmt.Errorf("%w: stopping the controller: %w", errFatal, err)
	}
	if err := b.ensureNamespace(ctx, directNamespace); err != nil {
		return err
	}
	// A warm-up, not counted: connections opened, code paths and caches warm on both sides.
	warmUp := b.scale.concurrency
	gwWarm := runLoad(ctx, warmUp, b.scale.concurrency, createBatchBound, func(ctx context.Context, i int) error {
		_, err := b.sys.createThroughGateway(ctx, -1-i)
		return err
	})
	directWarm := runLoad(ctx, warmUp, b.scale.concurrency, createBatchBound, func(ctx context.Context, i int) error {
		return b.sys.createDirect(ctx, directNamespace, "warm-up-"+strconv.Itoa(i), i)
	})
	if gwWarm.FirstErr != nil || directWarm.FirstErr != nil {
		return fmt.Errorf("warming up: gateway %v, direct %v", gwWarm.FirstErr, directWarm.FirstErr)
	}
	perRound := b.scale.compare / createRounds
	var viaGateway, direct loadResult
	gatewayCPU, directCPU := cpuAccount{}, cpuAccount{}
	for round := range createRounds {
		offset := round * perRound
		gatewayRound := func() {
			defer b.countCPU(&gatewayCPU)()
			viaGateway = viaGateway.merge(runLoad(ctx, perRound, b.scale.concurrency, createBatchBound,
				func(ctx context.Context, i int) error {
					_, err := b.sys.createThroughGateway(ctx, offset+i)
					return err
				}))
		}
		directRound := func() {
			defer b.countCPU(&directCPU)()
			direct = direct.merge(runLoad(ctx, perRound, b.scale.concurrency, createBatchBound,
				func(ctx context.Context, i int) error {
					return b.sys.createDirect(ctx, directNamespace, "direct-"+strconv.Itoa(offset+i), offset+i)
				}))
		}
		if round%2 == 0 {
			gatewayRound()
			directRound()
		} else {
			directRound()
			gatewayRound()
		}
	}
	for side, r := range map[string]loadResult{"gateway": viaGateway, "direct": direct} {
		if r.FirstErr != nil {
			return fmt.Errorf("%s creates: %d failed: %w", side, r.Failed, r.FirstErr)
		}
	}
	b.reportCreates(viaGateway, direct)
	b.rep.reportCPU(scenarioCreate, "create through the gateway", gatewayCPU, viaGateway.Done)
	b.rep.reportCPU(scenarioCreate, "direct create", directCPU, direct.Done)
	return nil
}

// countCPU takes the CPU account now; the function it answers adds the CPU used since to into.
// Use: defer b.countCPU(&account)().
func (b *bench) countCPU(into *cpuAccount) func() {
	before := b.sys.takeCPU()
	return func() { *into = into.plus(b.sys.takeCPU().since(before)) }
}

func (b *bench) reportCreates(viaGateway, direct loadResult) {
	r, sc := b.rep, scenarioCreate
	note := fmt.Sprintf("%d creates per side at concurrency %d, after a warm-up, %d interleaved rounds, controller stopped",
		viaGateway.Done, b.scale.concurrency, createRounds)
	r.add(sc, "creates/s through the gateway", viaGateway.Rate(), "/s", note)
	r.add(sc, "creates/s direct client-go Create", direct.Rate(), "/s", note)
	r.atLeast(sc, "gateway throughput / direct throughput", ratio(viaGateway.rate(), direct.rate()), "", 0.9, "")
	for _, p := range []float64{50, 99} {
		name := "p" + strconv.Itoa(int(p))
		g, d := percentileIn(viaGateway.Latencies, p, milliUnit), percentileIn(direct.Latencies, p, milliUnit)
		r.addReading(sc, "create latency "+name+" gateway", g, "ms", "")
		r.addReading(sc, "create latency "+name+" direct", d, "ms", "")
		r.addReading(sc, "added latency "+name+" (gateway - direct)", g.minus(d), "ms", "")
	}
}
