package faults_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/devenv"
	"github.com/lendo/loan-operator/test/stacktest"
)

// appNamespace is where the gateway creates applications and where the tests create theirs.
const appNamespace = "default"

// created is what a test sent in: the names of the applications, and through which door.
type created struct {
	mu                    sync.Mutex
	names                 []string
	viaGateway, viaAPI    int
	firstErr              error
	gatewayURL, apiPrefix string
	stack                 *devenv.Stack
	inFlight              chan struct{}
}

// createApplications sends n applications, one every `every` (so that they are in flight while
// a fault strikes), alternately through the gateway's REST API and straight to the API server
// (as kubectl or another program would: without the status label), at most 16 at a time. It
// returns once all are answered or ctx ends; an application that could not be created is an
// error, since the tests inject faults only where creating must still work.
func createApplications(ctx context.Context, stack *devenv.Stack, prefix string, n int, every time.Duration) (*created, error) {
	c := &created{stack: stack, gatewayURL: stack.GatewayURL, apiPrefix: prefix, inFlight: make(chan struct{}, 16)}
	var wg sync.WaitGroup
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := range n {
		select {
		case <-ctx.Done():
			wg.Wait()
			return c, errors.Join(ctx.Err(), c.firstErr)
		case c.inFlight <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-c.inFlight }()
			c.createOne(ctx, i)
		}()
		if i < n-1 {
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}
	wg.Wait()
	return c, c.firstErr
}

func (c *created) createOne(ctx context.Context, i int) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var name string
	var err error
	viaGateway := i%2 == 0
	if viaGateway {
		name, err = createThroughGateway(ctx, c.gatewayURL, "Fault", fmt.Sprintf("%s %d", c.apiPrefix, i))
	} else {
		name = fmt.Sprintf("%s-%03d", c.apiPrefix, i)
		err = c.stack.Client.Create(ctx, &loansv1alpha1.LoanApplication{
			ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: name},
			Spec:       loansv1alpha1.LoanApplicationSpec{FirstName: "Fault", LastName: fmt.Sprintf("%s %d", c.apiPrefix, i)},
		})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.firstErr == nil {
			c.firstErr = fmt.Errorf("application %d: %w", i, err)
		}
		return
	}
	c.names = append(c.names, name)
	if viaGateway {
		c.viaGateway++
	} else {
		c.viaAPI++
	}
}

// createThroughGateway POSTs one application and returns its id (the resource's name).
func createThroughGateway(ctx context.Context, gatewayURL, first, last string) (string, error) {
	code, app, body, err := stacktest.PostApplication(ctx, httpClient, gatewayURL, first, last)
	if err != nil {
		return "", err
	}
	if code != http.StatusCreated {
		return "", fmt.Errorf("POST /api/v1/applications: %d %s", code, body)
	}
	return app.ID, nil
}
