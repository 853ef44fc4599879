package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/lendo/loan-operator/internal/devenv"
)

// createRounds is how many alternating rounds each side of scenario 2 gets: interleaving them
// spreads whatever else the shared machine does over both sides.
const createRounds = 4

// rbacSettle bounds the wait for a new RoleBinding to take effect.
const rbacSettle = 15 * time.Second

// createBatchBound bounds one round of creates.
const createBatchBound = 10 * time.Minute

// prepareDirectSide stops the controller (a step that runs alone, --only, finds it running),
// and readies the direct namespace for writes with the gateway's identity.
func (b *bench) prepareDirectSide(ctx context.Context) error {
	if err := b.sys.stack.Controllers[0].Stop(); err != nil {
		return fmt.Errorf("%w: stopping the controller: %w", errFatal, err)
	}
	if err := b.ensureNamespace(ctx, directNamespace); err != nil {
		return err
	}
	return b.grantGatewayIdentity(ctx, directNamespace)
}

// createComparison is scenario 2: creates through the gateway against direct client-go creates
// of the same objects at the same concurrency, with the controller stopped so that neither side
// competes with its work. Gateway creates go to the gateway's namespace, direct ones to their
// own; both are deleted afterwards. The two sides are symmetric: the direct client authenticates
// as the gateway's ServiceAccount (its client certificate), so both pass the API server's flow
// control at the same level, and neither sends an Idempotency-Key.
func (b *bench) createComparison(ctx context.Context) error {
	if err := b.prepareDirectSide(ctx); err != nil {
		return err
	}
	if err := b.checkDirectFlowLevel(ctx); err != nil {
		return err
	}
	// A warm-up, not counted: connections opened, code paths and caches warm on both sides.
	warmUp := b.scale.concurrency
	gwWarm := runLoad(ctx, warmUp, b.scale.concurrency, createBatchBound, func(ctx context.Context, i int) error {
		_, err := b.sys.createThroughGateway(ctx, -1-i)
		return err
	})
	directWarm := runLoad(ctx, warmUp, b.scale.concurrency, createBatchBound, func(ctx context.Context, i int) error {
		return b.sys.createAsGateway(ctx, directNamespace, "warm-up-"+strconv.Itoa(i), i)
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
					return b.sys.createAsGateway(ctx, directNamespace, "direct-"+strconv.Itoa(offset+i), offset+i)
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

// checkDirectFlowLevel records which FlowSchema and priority level serve the direct side, and
// checks that it is not exempt: an exempt client (an administrator) skips the queueing and the
// cost that the gateway's requests pay, and would flatter the direct side.
func (b *bench) checkDirectFlowLevel(ctx context.Context) error {
	// The RBAC authorizer sees the new binding through its informer, a moment after its create.
	var schema, level string
	var exempt bool
	var err error
	for deadline := time.Now().Add(rbacSettle); ; {
		schema, level, exempt, err = b.flowLevel(ctx, b.sys.gatewayConfig)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("the direct side's flow-control level: %w", err)
	}
	b.rep.check(scenarioCreate, "direct side as a ServiceAccount, not exempt from flow control", !exempt,
		fmt.Sprintf("user %s (client certificate), the gateway's identity; FlowSchema %s, priority level %s", devenv.GatewayUser, schema, level))
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
	note := fmt.Sprintf("%d creates per side at concurrency %d, after a warm-up, %d interleaved rounds, controller stopped; "+
		"both sides as the gateway's ServiceAccount, neither with an Idempotency-Key", viaGateway.Done, b.scale.concurrency, createRounds)
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
