package status

import (
	"context"
	"fmt"
	"time"
)

// bound bounds the reading of one destination: its listing and the manifests beside the
// archives. Each request has its own stall watchdog; this is the way out of a slow crawl.
const bound = 5 * time.Minute

// Destination is one destination to report on: its name, and how to open it for reading (with
// the function that closes what it opened).
type Destination struct {
	Name string
	Open func(ctx context.Context) (Source, func() error, error)
}

// Collect reports every target at every destination. A destination that cannot be opened makes
// each of its entries a problem, and the others go on.
func Collect(ctx context.Context, dests []Destination, targets []Target, o Options) []Entry {
	var entries []Entry
	for _, d := range dests {
		entries = append(entries, collect(ctx, d, targets, o)...)
	}
	return entries
}

func collect(ctx context.Context, d Destination, targets []Target, o Options) []Entry {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	src, closeSrc, err := d.Open(ctx)
	if err == nil {
		defer closeSrc()
	}
	var entries []Entry
	for _, t := range targets {
		if err != nil {
			entries = append(entries, Entry{Target: t.String(), App: t.App, Database: t.Database, Destination: d.Name,
				Retention: map[string]int{}, Warnings: []string{},
				Problems: []string{fmt.Sprintf("cannot open %s: %v", d.Name, err)}})
			continue
		}
		entries = append(entries, Build(ctx, src, d.Name, t, o))
	}
	return entries
}

// Scrub passes every problem and warning of the report through scrub: the report goes to
// stdout, a file and the webhook, and an error from a store's SDK can carry a request URL.
func (r *Report) Scrub(scrub func(string) string) {
	for i := range r.Targets {
		e := &r.Targets[i]
		for j := range e.Problems {
			e.Problems[j] = scrub(e.Problems[j])
		}
		for j := range e.Warnings {
			e.Warnings[j] = scrub(e.Warnings[j])
		}
	}
}

// Gather is the report of every target at every destination as of o.Now, with the thresholds
// it was judged by.
func Gather(ctx context.Context, dests []Destination, targets []Target, o Options) Report {
	return Report{GeneratedAt: o.Now.UTC(), Timezone: o.Zone.String(), MaxAge: Duration(o.MaxAge), MaxShrink: o.MaxShrink,
		Targets: Collect(ctx, dests, targets, o)}
}
