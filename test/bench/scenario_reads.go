package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"time"
)

// pageLimit is the page size of every list: the gateway's largest.
const pageLimit = 1000

// apiApplications is the API server's path of the applications in the gateway's namespace.
const apiApplications = "/apis/loans.lendo.se/v1alpha1/namespaces/" + gatewayNamespace + "/loanapplications"

// pageBound bounds a traversal of every page.
const pageBound = 10 * time.Minute

// readsAt is scenario 3 with n applications stored: the first page of a list by status and a
// get by id, each through the gateway (its cache) and straight from the API server, one read at
// a time, alternating between the two; then a traversal of every page.
func (b *bench) readsAt(n int, status string) func(context.Context) error {
	return func(ctx context.Context) error {
		sc := scenarioReads + " at " + strconv.Itoa(n)
		gwList, apiList, err := b.alternate(ctx, b.scale.listReps, func(int) (string, string) {
			return "/api/v1/applications?status=" + status + "&limit=" + strconv.Itoa(pageLimit),
				apiApplications + "?labelSelector=" + url.QueryEscape("status="+status) + "&limit=" + strconv.Itoa(pageLimit)
		})
		if err != nil {
			return err
		}
		b.reportReads(sc, "list by status (first page of "+strconv.Itoa(pageLimit)+", status="+status+")", gwList, apiList)
		names := b.allNames()
		gwGet, apiGet, err := b.alternate(ctx, b.scale.getReps, func(int) (string, string) {
			name := names[rand.IntN(len(names))]
			return "/api/v1/applications/" + name, apiApplications + "/" + name
		})
		if err != nil {
			return err
		}
		b.reportReads(sc, "get by id", gwGet, apiGet)
		return b.reportPaging(ctx, sc, n)
	}
}

// alternate makes reps reads on each side, one at a time: gateway, API server, gateway...
func (b *bench) alternate(ctx context.Context, reps int, paths func(i int) (gateway, api string)) (gw, api []time.Duration, err error) {
	for i := range reps {
		gwPath, apiPath := paths(i)
		began := time.Now()
		if _, err := b.sys.gatewayRead(ctx, gwPath); err != nil {
			return nil, nil, err
		}
		gw = append(gw, time.Since(began))
		began = time.Now()
		if _, err := b.sys.apiRead(ctx, apiPath); err != nil {
			return nil, nil, err
		}
		api = append(api, time.Since(began))
	}
	return gw, api, nil
}

func (b *bench) reportReads(sc, what string, gw, api []time.Duration) {
	r := b.rep
	note := strconv.Itoa(len(gw)) + " reads per side, one at a time, alternating"
	for _, p := range []float64{50, 99} {
		name := "p" + strconv.Itoa(int(p))
		r.addReading(sc, what+" "+name+" gateway", percentileIn(gw, p, milliUnit), "ms", note)
		r.addReading(sc, what+" "+name+" API server", percentileIn(api, p, milliUnit), "ms", note)
	}
	speedUp := ratio(percentileIn(api, 50, milliUnit), percentileIn(gw, 50, milliUnit))
	r.addReading(sc, what+" median speed-up (API / gateway)", speedUp, "x", "")
}

// pagingResult is one traversal of every page of a list.
type pagingResult struct {
	items, distinct int
	pages           []time.Duration
	total           time.Duration
}

// reportPaging pages through every application through the gateway and through the API server.
func (b *bench) reportPaging(ctx context.Context, sc string, n int) error {
	gw, err := b.pageGateway(ctx)
	if err != nil {
		return err
	}
	api, err := b.pageAPIServer(ctx)
	if err != nil {
		return err
	}
	r := b.rep
	r.check(sc, "paging through every application (gateway) works", gw.items == n && gw.distinct == n,
		fmt.Sprintf("%d items, %d distinct, %d expected, %d pages", gw.items, gw.distinct, n, len(gw.pages)))
	r.atMost(sc, "page of "+strconv.Itoa(pageLimit)+" p99 (gateway)", percentileIn(gw.pages, 99, milliUnit), "ms", 100,
		"our bound for 'each page is fast'")
	r.addReading(sc, "page of "+strconv.Itoa(pageLimit)+" max (gateway)", percentileIn(gw.pages, 100, milliUnit), "ms", "")
	r.addReading(sc, "page of "+strconv.Itoa(pageLimit)+" p99 (API server)", percentileIn(api.pages, 99, milliUnit), "ms", "")
	r.add(sc, "every page, total (gateway)", seconds(gw.total), "s", "")
	r.add(sc, "every page, total (API server)", seconds(api.total), "s", fmt.Sprintf("%d items", api.items))
	return nil
}

// pageGateway follows the gateway's continue tokens from the first page to the last.
func (b *bench) pageGateway(ctx context.Context) (pagingResult, error) {
	return page(ctx, func(ctx context.Context, token string) ([]string, string, time.Duration, error) {
		path := "/api/v1/applications?limit=" + strconv.Itoa(pageLimit)
		if token != "" {
			path += "&continue=" + url.QueryEscape(token)
		}
		began := time.Now()
		data, err := b.sys.gatewayRead(ctx, path)
		took := time.Since(began)
		if err != nil {
			return nil, "", 0, err
		}
		var pg struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			Continue string `json:"continue"`
		}
		if err := json.Unmarshal(data, &pg); err != nil {
			return nil, "", 0, err
		}
		names := make([]string, 0, len(pg.Items))
		for _, it := range pg.Items {
			names = append(names, it.ID)
		}
		return names, pg.Continue, took, nil
	})
}

// pageAPIServer follows the API server's continue tokens.
func (b *bench) pageAPIServer(ctx context.Context) (pagingResult, error) {
	return page(ctx, func(ctx context.Context, token string) ([]string, string, time.Duration, error) {
		path := apiApplications + "?limit=" + strconv.Itoa(pageLimit)
		if token != "" {
			path += "&continue=" + url.QueryEscape(token)
		}
		began := time.Now()
		data, err := b.sys.apiRead(ctx, path)
		took := time.Since(began)
		if err != nil {
			return nil, "", 0, err
		}
		var pg struct {
			Metadata struct {
				Continue string `json:"continue"`
			} `json:"metadata"`
			Items []struct {
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			} `json:"items"`
		}
		if err := json.Unmarshal(data, &pg); err != nil {
			return nil, "", 0, err
		}
		names := make([]string, 0, len(pg.Items))
		for _, it := range pg.Items {
			names = append(names, it.Metadata.Name)
		}
		return names, pg.Metadata.Continue, took, nil
	})
}

// pageReader reads one page: its names, the next continue token and how long the read took
// (not counting the decoding in this process).
type pageReader func(ctx context.Context, token string) (names []string, next string, took time.Duration, err error)

// page reads pages until one has no continue token, bounded in pages and time.
func page(ctx context.Context, read pageReader) (pagingResult, error) {
	ctx, cancel := context.WithTimeout(ctx, pageBound)
	defer cancel()
	var res pagingResult
	seen := make(map[string]struct{})
	token := ""
	const maxPages = 10_000
	for range maxPages {
		names, next, took, err := read(ctx, token)
		if err != nil {
			return res, fmt.Errorf("page %d: %w", len(res.pages)+1, err)
		}
		res.pages = append(res.pages, took)
		res.total += took
		res.items += len(names)
		for _, n := range names {
			seen[n] = struct{}{}
		}
		if next == "" {
			res.distinct = len(seen)
			return res, nil
		}
		token = next
	}
	return res, fmt.Errorf("more than %d pages", maxPages)
}
