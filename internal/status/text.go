package status

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/units"
)

// TextDays is how many days the text and JSON reports show.
const TextDays = 30

// Calendar marks of the text report.
var marks = map[string]byte{Archived: '#', Verified: 'v', Failed: 'X', Missing: '.'}

// WriteText writes the report for a terminal: per entry the newest archive, the last 30 days as
// one line, the last week's sizes with their change, retention classes, totals and problems.
func WriteText(w io.Writer, r Report) error {
	r = r.Last(TextDays)
	zone := r.Timezone
	var b strings.Builder
	for i, e := range r.Targets {
		if i > 0 {
			b.WriteString("\n")
		}
		verdict := "OK"
		if !e.OK() {
			verdict = "PROBLEM"
		}
		fmt.Fprintf(&b, "%s at %s: %s\n", e.Target, e.Destination, verdict)
		if !e.Unreadable {
			writeFacts(&b, e, zone) // none to tell of a destination these keys cannot list
		}
		for _, p := range e.Problems {
			fmt.Fprintf(&b, "  PROBLEM    %s\n", p)
		}
		for _, p := range e.Warnings {
			fmt.Fprintf(&b, "  warning    %s\n", p)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFacts writes what entry e's destination holds: the newest archive, the calendar, the
// last week's sizes, retention classes, totals and the newest verification.
func writeFacts(b *strings.Builder, e Entry, zone string) {
	if n := e.Newest; n != nil {
		loc, _ := time.LoadLocation(zone)
		if loc == nil {
			loc = time.UTC
		}
		fmt.Fprintf(b, "  newest     %s, finished %s (%s ago), %s\n", n.Backup, n.FinishedAt.In(loc).Format("2006-01-02 15:04 MST"),
			Age(time.Duration(n.AgeSeconds)*time.Second), units.IEC(n.Bytes))
	}
	if len(e.Days) > 0 {
		cal := make([]byte, len(e.Days))
		missing := 0
		for j, d := range e.Days {
			cal[j] = marks[d.Status]
			if !d.Marked() {
				missing++
			}
		}
		fmt.Fprintf(b, "  %d days    %s  %s .. %s, %d missing (# archived, v verified, X failed verification, . missing)\n",
			len(e.Days), cal, e.Days[0].Date, e.Days[len(e.Days)-1].Date, missing)
		var sizes []string
		for _, d := range e.Days[max(0, len(e.Days)-7):] {
			if !d.Marked() {
				sizes = append(sizes, d.Date[5:]+" -")
				continue
			}
			s := d.Date[5:] + " " + units.IEC(d.Bytes)
			if d.ChangePercent != nil {
				s += fmt.Sprintf(" (%+.0f%%)", *d.ChangePercent)
			}
			sizes = append(sizes, s)
		}
		fmt.Fprintf(b, "  sizes      %s\n", strings.Join(sizes, ", "))
	}
	if len(e.Retention) > 0 {
		var classes []string
		for c, n := range e.Retention {
			classes = append(classes, fmt.Sprintf("%s %d", c, n))
		}
		sort.Strings(classes)
		fmt.Fprintf(b, "  retention  %s\n", strings.Join(classes, ", "))
	}
	fmt.Fprintf(b, "  totals     %d archives, %s stored\n", e.Archives, units.IEC(e.TotalBytes))
	if v := e.Verification; v != nil {
		res := "passed"
		if !v.Passed {
			res = "FAILED"
		}
		if v.Restored {
			res += ", restored and counted"
		}
		if d := v.Drill; d != nil {
			passed := 0
			for _, c := range d.Checks {
				if c.Passed {
					passed++
				}
			}
			res += fmt.Sprintf(" in a drill on %s, %d of %d checks true", d.Plan, passed, len(d.Checks))
		}
		fmt.Fprintf(b, "  verified   %s %s on %s (%d tables, %d rows)\n", v.Backup, res, v.VerifiedAt.UTC().Format("2006-01-02 15:04 UTC"), v.Tables, v.Rows)
	} else {
		b.WriteString("  verified   never (run pgoffsite verify)\n")
	}
}

// WriteJSON writes the report for machines, with the last 30 days of each calendar.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.Last(TextDays))
}
