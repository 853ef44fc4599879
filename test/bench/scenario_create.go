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

// createSide is one way of creating in scenario 2, with what it measured.
type createSide struct {
	create func(ctx context.Context, i int) error
	result loadResult
	cpu    cpuAccount
}

// createComparison is scenario 2: creates through the gateway against direct client-go creates
// of the same objects at the same concurrency, with the controller stopped so that neither side
// competes with its work; everything is deleted afterwards. The sides are symmetric: the direct
// client authenticates as the gateway's ServiceAccount (its client certificate), so every side
// passes the API server's flow control at the same level, and none sends an Idempotency-Key.
//
// The direct side creates where the gateway creates, in the namespace its cache watches: an
// application reaches the gateway's watch however it was made, so the cache's cost (the API
// server's delivery, the gateway's decoding) is a cost of running the gateway, paid by both
// sides, not a cost of creating through it. A third side creates directly where nothing
// watches, and is reported beside it: the gateway's whole cost, its cache included.
func (b *bench) createComparison(ctx context.Context) error {
	if err := b.prepareDirectSide(ctx); err != nil {
		return err
	}
	if err := b.checkDirectFlowLevel(ctx); err != nil {
		return err
	}
	viaGateway := &createSide{create: func(ctx context.Context, i int) error {
		_, err := b.sys.createThroughGateway(ctx, i)
		return err
	}}
	direct := &createSide{create: func(ctx context.Context, i int) error {
		return b.sys.createAsGateway(ctx, gatewayNamespace, "direct-"+strconv.Itoa(i), i)
	}}
	unwatched := &createSide{create: func(ctx context.Context, i int) error {
		return b.sys.createAsGateway(ctx, directNamespace, "direct-"+strconv.Itoa(i), i)
	}}
	sides := []*createSide{viaGateway, direct, unwatched}
	if err := b.warmUpCreates(ctx, sides); err != nil {
		return err
	}
	perRound := b.scale.compare / createRounds
	for round := range createRounds {
		offset := round * perRound
		// Every other round runs the sides in reverse, so that each is on average in the
		// middle of the order.
		for k := range sides {
			side := sides[k]
			if round%2 == 1 {
				side = sides[len(sides)-1-k]
			}
			stop := b.countCPU(&side.cpu)
			side.result = side.result.merge(runLoad(ctx, perRound, b.scale.concurrency, createBatchBound,
				func(ctx context.Context, i int) error { return side.create(ctx, offset+i) }))
			stop()
		}
	}
	for name, side := range map[string]*createSide{"gateway": viaGateway, "direct": direct, "unwatched direct": unwatched} {
		if r := side.result; r.FirstErr != nil {
			return fmt.Errorf("%s creates: %d failed: %w", name, r.Failed, r.FirstErr)
		}
	}
	b.reportCreates(viaGateway.result, direct.result, unwatched.result)
	b.rep.reportCPU(scenarioCreate, "create through the gateway", viaGateway.cpu, viaGateway.result.Done)
	b.rep.reportCPU(scenarioCreate, "direct create", direct.cpu, direct.result.Done)
	b.rep.reportCPU(scenarioCreate, "direct create where nothing watches", unwatched.cpu, unwatched.result.Done)
	return nil
}

// warmUpCreates makes a round of each side's creates, not counted: connections opened, code
// paths and caches warm. Negative indexes keep their names apart from the measured ones.
func (b *bench) warmUpCreates(ctx context.Context, sides []*createSide) error {
	n := b.scale.concurrency
	for _, side := range sides {
		r := runLoad(ctx, n, n, createBatchBound, func(ctx context.Context, i int) error { return side.create(ctx, -1-i) })
		if r.FirstErr != nil {
			return fmt.Errorf("warming up: %w", r.FirstErr)
		}
	}
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

func (b *bench) reportCreates(viaGateway, direct, unwatched loadResult) {
	r, sc := b.rep, scenarioCreate
	note := fmt.Sprintf("%d creates per side at concurrency %d, after a warm-up, %d interleaved rounds, controller stopped; "+
		"every side as the gateway's ServiceAccount, none with an Idempotency-Key", viaGateway.Done, b.scale.concurrency, createRounds)
	r.add(sc, "creates/s through the gateway", viaGateway.Rate(), "/s", note)
	r.add(sc, "creates/s direct client-go Create", direct.Rate(), "/s", note+"; into the gateway's namespace, which its cache watches")
	r.add(sc, "creates/s direct client-go Create where nothing watches", unwatched.Rate(), "/s", note+"; into a namespace no cache watches")
	r.atLeast(sc, "gateway throughput / direct throughput", ratio(viaGateway.rate(), direct.rate()), "", 0.9,
		"both sides create in the namespace the gateway's cache watches")
	r.addReading(sc, "gateway throughput / direct throughput where nothing watches", ratio(viaGateway.rate(), unwatched.rate()), "",
		"the direct side creates where no cache watches: the gateway's side also pays for its cache")
	for _, p := range []float64{50, 99} {
		name := "p" + strconv.Itoa(int(p))
		g, d := percentileIn(viaGateway.Latencies, p, milliUnit), percentileIn(direct.Latencies, p, milliUnit)
		r.addReading(sc, "create latency "+name+" gateway", g, "ms", "")
		r.addReading(sc, "create latency "+name+" direct", d, "ms", "")
		r.addReading(sc, "added latency "+name+" (gateway - direct)", g.minus(d), "ms", "")
	}
}
