package listing

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/units"
)

// Report is what pgoffsite list prints: the archives at one destination, newest first.
type Report struct {
	Destination string    `json:"destination"`
	Timezone    string    `json:"timezone"`
	Archives    []Archive `json:"archives"`
}

// WriteJSON writes the report as one JSON document.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes one row per archive, newest first, times in zone, then each problem found,
// naming its key: a dump that is not an archive to trust is listed, never as a good one.
func WriteText(w io.Writer, r Report, zone *time.Location) error {
	if zone == nil {
		zone = time.UTC
	}
	if len(r.Archives) == 0 {
		_, err := fmt.Fprintf(w, "no archive at %s (has the backup run with this ARCHIVE_URL?)\n", r.Destination)
		return err
	}
	good := 0
	for _, a := range r.Archives {
		if a.OK() {
			good++
		}
	}
	fmt.Fprintf(w, "%d archives at %s, newest first (times in %s)", good, r.Destination, zone)
	if bad := len(r.Archives) - good; bad > 0 {
		fmt.Fprintf(w, ", and %d dumps or manifests that are not archives (PROBLEM below)", bad)
	}
	fmt.Fprint(w, "\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tBACKUP\tFINISHED\tSIZE\tENCRYPTED\tVERIFIED\tKEY (--from)")
	var problems []string
	for _, a := range r.Archives {
		enc := "no"
		if a.Encrypted {
			enc = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Target, a.Backup+" "+at(a.TakenAt, zone), at(a.FinishedAt, zone),
			size(a), enc, verdict(a, zone), a.Key)
		problems = append(problems, a.Problems...)
		if a.Verified != nil {
			problems = append(problems, a.Verified.Problems...)
		}
		for _, n := range a.Notes {
			fmt.Fprintln(tw, "\t\t\t\t\t\tnote: "+n)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(problems) > 0 {
		fmt.Fprintln(w)
	}
	for _, p := range problems {
		if _, err := fmt.Fprintf(w, "PROBLEM    %s\n", p); err != nil {
			return err
		}
	}
	return nil
}

// verdict is the VERIFIED column: the record's verdict and date, or why there is none to show.
func verdict(a Archive, zone *time.Location) string {
	v := a.Verified
	switch {
	case !a.OK():
		return "NOT AN ARCHIVE (below)"
	case v == nil:
		return "never"
	case !v.Trusted():
		return "record untrusted (below)"
	}
	how := "passed"
	if !v.Passed {
		how = "FAILED"
	}
	if v.Drill {
		how += " (drill)"
	} else if v.Restored {
		how += " (restored)"
	}
	return how + " " + v.At.In(zone).Format("2006-01-02")
}

// size is what the store holds of the dump; "-" where it holds none (a manifest alone).
func size(a Archive) string {
	if a.Bytes == 0 && !a.OK() {
		return "-"
	}
	if a.Parts > 0 {
		return fmt.Sprintf("%s, %d parts", units.IEC(a.Bytes), a.Parts)
	}
	return units.IEC(a.Bytes)
}

func at(t time.Time, zone *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(zone).Format("2006-01-02 15:04")
}
