package heroku

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	hk "github.com/heroku/heroku-go/v5"
)

// Lists page (the Platform API reference, "Ranges"): 200 items by default, up to 1000 with max=;
// an answer that leaves some out is 206 Partial Content with Next-Range, which the next request
// sends back as its Range. heroku-go never sees the headers, so it reads the first page only:
// the lists that must be read whole are read here.

const (
	listPageSize = 1000 // the most Heroku answers in one page
	// maxListPages bounds the pages of one list (a million items): a server whose Next-Range
	// never ends must not hold a command for ever.
	maxListPages = 1000
)

// idPages is the first range of a list whose order does not matter: Heroku's largest pages, by
// id, which every list but buildpack installations is ranged by (the Heroku CLI asks domains so,
// src/lib/utils/paginator.ts).
var idPages = fmt.Sprintf("id ..; max=%d", listPageSize)

// lister is how a list is asked for: Accept version=3 (platform) or 3.sdk with add-on plans and
// config vars included (sdk).
type lister struct {
	svc  *hk.Service
	http *http.Client
}

// eachPage GETs path page by page as l asks, from the range first ("": none, the server's
// default order and page size), and hands each page's body to page until it returns false or
// the last page has been read.
func eachPage(ctx context.Context, l lister, path, first string, page func(body []byte) (more bool, err error)) error {
	rng := first
	for n := 0; ; n++ {
		if n == maxListPages {
			return fmt.Errorf("GET %s: Heroku still had more after %d pages (Next-Range %q); stopped reading", path, n, rng)
		}
		req, err := l.svc.NewRequest(ctx, http.MethodGet, path, nil, nil)
		if err != nil {
			return err
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := l.http.Do(req)
		if err != nil {
			return platformErr(err)
		}
		// answerTransport has read the body whole already (and checked that it is JSON).
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET %s: read the answer: %w", path, err)
		}
		more, err := page(body)
		if err != nil || !more {
			return err
		}
		next := resp.Header.Get("Next-Range")
		if resp.StatusCode != http.StatusPartialContent || next == "" {
			return nil
		}
		if next == rng {
			return fmt.Errorf("GET %s: Heroku answered the range %q with the same range as the next one; stopped reading", path, rng)
		}
		rng = next
	}
}

// EveryRelease calls fn with each of the app's releases, newest first, over every page Heroku
// answers, until fn returns false.
func (c *Client) EveryRelease(ctx context.Context, app string, fn func(Release) bool) error {
	first := fmt.Sprintf("version ..; max=%d, order=desc", listPageSize)
	err := eachPage(ctx, c.lists, appURL(app)+"/releases", first, func(body []byte) (bool, error) {
		var list hk.ReleaseListResult
		if err := json.Unmarshal(body, &list); err != nil {
			return false, fmt.Errorf("GET /apps/%s/releases: malformed answer: %w", app, err)
		}
		for _, r := range list {
			if !fn(releaseOf(r)) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("heroku: releases of app=%s: %w", app, err)
	}
	return nil
}

// listAll reads every page of the list at path, from the range first, as l asks for it.
func listAll[T any](ctx context.Context, l lister, path, first string) ([]T, error) {
	var all []T
	err := eachPage(ctx, l, path, first, func(body []byte) (bool, error) {
		var page []T
		if err := json.Unmarshal(body, &page); err != nil {
			return false, fmt.Errorf("GET %s: malformed answer: %w", path, err)
		}
		all = append(all, page...)
		return true, nil
	})
	return all, err
}
