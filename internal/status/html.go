package status

import (
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/units"
)

// HTML layout of the calendar: one column per week, Monday on top.
const (
	cell = 12
	gap  = 3
)

type htmlTarget struct {
	Name     string
	OK       bool
	Primary  Entry // the calendar and the chart are of the first destination
	Entries  []Entry
	Calendar template.HTML
	Chart    template.HTML
	Marked   int
	Missing  int
}

// WriteHTML writes a self-contained page (inline CSS and SVG, no script, nothing fetched): per
// target a calendar heat map of the report's days, an SVG chart of the archive sizes, the
// newest verification and every destination. It reads at desktop and phone widths.
func WriteHTML(w io.Writer, r Report) error {
	var targets []*htmlTarget
	byName := map[string]*htmlTarget{}
	for _, e := range r.Targets {
		t := byName[e.Target]
		if t == nil {
			t = &htmlTarget{Name: e.Target, OK: true, Primary: e}
			byName[e.Target] = t
			targets = append(targets, t)
		}
		t.Entries = append(t.Entries, e)
		t.OK = t.OK && e.OK()
	}
	for _, t := range targets {
		t.Calendar = calendarSVG(t.Primary)
		t.Chart = chartSVG(t.Primary)
		for _, d := range t.Primary.Days {
			if d.Marked() {
				t.Marked++
			} else {
				t.Missing++
			}
		}
	}
	problems := 0
	for _, e := range r.Targets {
		problems += len(e.Problems)
	}
	return page.Execute(w, map[string]any{"R": r, "Targets": targets, "Problems": problems, "Shrink": r.MaxShrink * 100})
}

var funcs = template.FuncMap{
	"bytes": units.IEC,
	"age":   func(s int64) string { return Age(time.Duration(s) * time.Second) },
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
}

// calendarSVG draws the days as a heat map: a column per week, darker green for bigger
// archives, red for a failed verification, grey for a missing day.
func calendarSVG(e Entry) template.HTML {
	if len(e.Days) == 0 {
		return ""
	}
	first, err := time.Parse(time.DateOnly, e.Days[0].Date)
	if err != nil {
		return ""
	}
	offset := (int(first.Weekday()) + 6) % 7 // Monday = 0
	weeks := (offset + len(e.Days) + 6) / 7
	width, height := weeks*(cell+gap)+gap, 7*(cell+gap)+gap+14
	var biggest int64
	for _, d := range e.Days {
		biggest = max(biggest, d.Bytes)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="calendar" data-target="%s" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		template.HTMLEscapeString(e.Target), width, height, template.HTMLEscapeString(fmt.Sprintf("%d days of archives of %s", len(e.Days), e.Target)))
	lastMonth := ""
	for i, d := range e.Days {
		pos := offset + i
		x, y := gap+(pos/7)*(cell+gap), 14+gap+(pos%7)*(cell+gap)
		if month := d.Date[:7]; month != lastMonth && (pos%7 == 0 || i == 0) {
			t, _ := time.Parse(time.DateOnly, d.Date)
			fmt.Fprintf(&b, `<text x="%d" y="10" class="month">%s</text>`, x, t.Format("Jan"))
			lastMonth = d.Date[:7]
		}
		level := ""
		if d.Status == Archived || d.Status == Verified {
			level = fmt.Sprintf(` style="opacity:%.2f"`, 0.55+0.45*float64(d.Bytes)/float64(max(biggest, 1)))
		}
		label := d.Date + ": " + d.Status
		if d.Marked() {
			label += ", " + units.IEC(d.Bytes)
		}
		fmt.Fprintf(&b, `<rect class="day %s" data-date="%s" data-status="%s" x="%d" y="%d" width="%d" height="%d" rx="2"%s><title>%s</title></rect>`,
			d.Status, d.Date, d.Status, x, y, cell, cell, level, template.HTMLEscapeString(label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// chartSVG draws each day's archive size as a bar; a missing day is a gap.
func chartSVG(e Entry) template.HTML {
	const w, h, left, bottom = 600, 160, 64, 20
	var biggest int64
	for _, d := range e.Days {
		biggest = max(biggest, d.Bytes)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="sizes" viewBox="0 0 %d %d" role="img" aria-label="%s">`, w, h,
		template.HTMLEscapeString("archive size per day of "+e.Target))
	fmt.Fprintf(&b, `<line x1="%d" y1="4" x2="%d" y2="%d" class="axis"/><line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>`,
		left, left, h-bottom, left, h-bottom, w, h-bottom)
	fmt.Fprintf(&b, `<text x="%d" y="12" class="label" text-anchor="end">%s</text><text x="%d" y="%d" class="label" text-anchor="end">0</text>`,
		left-4, units.IEC(biggest), left-4, h-bottom)
	if n := len(e.Days); n > 0 && biggest > 0 {
		slot := float64(w-left) / float64(n)
		for i, d := range e.Days {
			if !d.Marked() {
				continue
			}
			bh := float64(h-bottom-8) * float64(d.Bytes) / float64(biggest)
			fmt.Fprintf(&b, `<rect class="bar %s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s</title></rect>`,
				d.Status, float64(left)+float64(i)*slot+0.5, float64(h-bottom)-bh, max(slot-1, 1), bh,
				template.HTMLEscapeString(d.Date+": "+units.IEC(d.Bytes)))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="label">%s</text><text x="%d" y="%d" class="label" text-anchor="end">%s</text>`,
			left, h-4, e.Days[0].Date, w, h-4, e.Days[n-1].Date)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

var page = template.Must(template.New("status").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pgoffsite status</title>
<style>
:root{--ok:#1a7f37;--bad:#cf222e;--muted:#6e7781;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#fff}
header,main{max-width:1120px;margin:0 auto;padding:16px}
header{border-bottom:1px solid var(--line)}
h1{font-size:1.4em;margin:0 0 4px}
h2{font-size:1.15em;margin:0;overflow-wrap:anywhere}
.sub{color:var(--muted);font-size:.9em}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:.8em;font-weight:600;vertical-align:middle}
.badge.ok{background:var(--ok)}.badge.bad{background:var(--bad)}
section.target{border:1px solid var(--line);border-radius:8px;padding:16px;margin:16px 0}
.head{display:flex;flex-wrap:wrap;gap:8px;align-items:center;justify-content:space-between}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:16px;margin-top:12px}
.panel h3{font-size:.95em;margin:0 0 6px;color:var(--muted);font-weight:600}
svg{width:100%;height:auto;display:block}
svg.calendar{max-width:520px}
.day{fill:#ebedf0}.day.archived{fill:#2da44e}.day.verified{fill:#116329}.day.failed{fill:var(--bad)}
.bar{fill:#2da44e}.bar.verified{fill:#116329}.bar.failed{fill:var(--bad)}
.axis{stroke:var(--line)}.label,.month{font-size:10px;fill:var(--muted)}
.legend{font-size:.85em;color:var(--muted);display:flex;flex-wrap:wrap;gap:10px;margin-top:6px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
ul.problems{margin:10px 0 0;padding-left:20px;color:var(--bad)}
ul.warnings{margin:6px 0 0;padding-left:20px;color:#9a6700}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
td{overflow-wrap:anywhere}
@media (max-width:600px){body{font-size:14px}header,main{padding:10px}section.target{padding:10px}th,td{padding:3px 4px}}
</style>
</head>
<body>
<header>
<h1>pgoffsite status {{if eq .Problems 0}}<span class="badge ok">all good</span>{{else}}<span class="badge bad">{{.Problems}} problem{{if ne .Problems 1}}s{{end}}</span>{{end}}</h1>
<div class="sub">Generated {{when .R.GeneratedAt}} · days in {{.R.Timezone}} · stale after {{.R.MaxAge}} · shrunk when more than {{printf "%.0f" (index . "Shrink")}}% below the week's median</div>
</header>
<main>
{{range .Targets}}
<section class="target" id="{{.Name}}">
<div class="head"><h2>{{.Name}}</h2>{{if .OK}}<span class="badge ok">OK</span>{{else}}<span class="badge bad">problem</span>{{end}}</div>
{{with .Primary.Newest}}<div class="sub">Newest archive {{.Backup}}, finished {{when .FinishedAt}} ({{age .AgeSeconds}} ago), {{bytes .Bytes}}{{if .Encrypted}}, encrypted{{end}}</div>{{else}}<div class="sub">No archive yet</div>{{end}}
{{range .Entries}}{{if .Problems}}<ul class="problems">{{range .Problems}}<li>{{.}}</li>{{end}}</ul>{{end}}{{if .Warnings}}<ul class="warnings">{{range .Warnings}}<li>{{.}}</li>{{end}}</ul>{{end}}{{end}}
<div class="grid">
<div class="panel"><h3>Last {{len .Primary.Days}} days at {{.Primary.Destination}}: {{.Marked}} archived, {{.Missing}} missing</h3>
{{.Calendar}}
<div class="legend"><span><i style="background:#2da44e"></i>archived</span><span><i style="background:#116329"></i>verified</span><span><i style="background:#cf222e"></i>failed verification</span><span><i style="background:#ebedf0"></i>missing</span></div>
</div>
<div class="panel"><h3>Archive size per day</h3>
{{.Chart}}
</div>
</div>
<div class="grid">
<div class="panel"><h3>Newest verification</h3>
{{with .Primary.Verification}}<p>{{.Backup}}: {{if .Passed}}<strong style="color:var(--ok)">passed</strong>{{else}}<strong style="color:var(--bad)">FAILED</strong>: {{.Error}}{{end}} on {{when .VerifiedAt}}; {{.Tables}} tables, {{.Rows}} rows{{if .Restored}}, restored and counted{{end}}.</p>{{else}}<p>Never verified: run <code>pgoffsite verify</code> (Heroku Scheduler can run it daily).</p>{{end}}
</div>
<div class="panel"><h3>Destinations</h3>
<div class="scroll"><table>
<tr><th>Destination</th><th>Newest</th><th>Archives</th><th>Status</th></tr>
{{range .Entries}}<tr><td>{{.Destination}}</td><td>{{with .Newest}}{{.Backup}}, {{age .AgeSeconds}} ago{{else}}none{{end}}</td><td>{{.Archives}} ({{bytes .TotalBytes}}){{range $c, $n := .Retention}}<br>{{$c}} {{$n}}{{end}}</td><td>{{if .OK}}OK{{else}}problem{{end}}</td></tr>
{{end}}</table></div>
</div>
</div>
</section>
{{end}}
</main>
</body>
</html>
`))

// WriteHTMLFile writes the page of WriteHTML to path whole or not at all: a browser or a web
// server reading it never sees half a report.
func WriteHTMLFile(path string, r Report) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".pgoffsite-status-*.html")
	if err != nil {
		return err
	}
	err = WriteHTML(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
