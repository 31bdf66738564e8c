package herokusim

// Lists page as the Platform API pages them (its reference, "Ranges"): the client asks with
//
//	Range: version ]41..; max=200, order=desc
//
// (field, an optional exclusive "]" before the first value and "[" after the last, max up to
// 1000, default 200, order asc or desc). An answer holding the whole of what was asked is 200; a
// truncated one is 206 Partial Content with Next-Range, which the client sends back as Range for
// the next page. Content-Range names the first and last value of the page. Every list is ranged
// by id and by its natural field (releases by version, domains by hostname, ...), sorted by the
// field asked for; the Heroku CLI asks `id ..; max=1000;` for domains (src/lib/utils/paginator.ts).

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

const (
	defaultPageSize = 200
	maxPageSize     = 1000
)

// rangeField is one field a list can be ranged by: each item's value, in the list's order.
type rangeField struct {
	name    string
	numeric bool // compared as integers (version, ordinal), otherwise as strings
	values  []string
}

// byField ranges the n items of a list by name, numbered by value(i).
func byField(name string, n int, value func(i int) string) rangeField {
	f := rangeField{name: name, values: make([]string, n)}
	for i := range n {
		f.values[i] = value(i)
	}
	return f
}

// byNumber ranges the n items of a list by an integer field.
func byNumber(name string, n int, value func(i int) int) rangeField {
	f := byField(name, n, func(i int) string { return strconv.Itoa(value(i)) })
	f.numeric = true
	return f
}

func (f rangeField) compare(a, b string) int {
	if f.numeric {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return cmp.Compare(x, y)
	}
	return strings.Compare(a, b)
}

// listRange is a parsed Range header of a list request.
type listRange struct {
	field       string
	first, last string // "" for open
	exclFirst   bool   // ]first
	exclLast    bool   // last[
	max         int
	desc        bool
}

// SetPageLimit makes list pages hold at most n items whatever max asks (0: Heroku's 1000), so
// that a test sees clients follow Next-Range without making thousands of items.
func (s *Sim) SetPageLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageLimit = n
}

// parseListRange reads h; fields are those the list accepts, the first its default.
func parseListRange(h string, fields []rangeField) (listRange, rangeField, error) {
	lr, field := listRange{field: fields[0].name, max: defaultPageSize}, fields[0]
	h = strings.TrimSpace(h)
	if h == "" {
		return lr, field, nil
	}
	spec, params, _ := strings.Cut(h, ";")
	f, bounds, _ := strings.Cut(strings.TrimSpace(spec), " ")
	i := slices.IndexFunc(fields, func(rf rangeField) bool { return rf.name == f })
	if i < 0 {
		return lr, field, fmt.Errorf("this list is ranged by %s, not by %q", acceptRanges(fields), f)
	}
	lr.field, field = f, fields[i]
	first, last, ok := strings.Cut(strings.TrimSpace(bounds), "..")
	if !ok {
		return lr, field, fmt.Errorf("range %q has no ..", bounds)
	}
	lr.first, lr.exclFirst = strings.CutPrefix(first, "]")
	lr.last, lr.exclLast = strings.CutSuffix(last, "[")
	for _, p := range strings.FieldsFunc(params, func(r rune) bool { return r == ',' || r == ';' }) {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch k {
		case "max":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return lr, field, fmt.Errorf("max=%s is not a page size", v)
			}
			lr.max = min(n, maxPageSize)
		case "order":
			if v != "asc" && v != "desc" {
				return lr, field, fmt.Errorf("order=%s is neither asc nor desc", v)
			}
			lr.desc = v == "desc"
		}
	}
	return lr, field, nil
}

func acceptRanges(fields []rangeField) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

// next is the Range of the page after the one that ended with the value from.
func (lr listRange) next(from string) string {
	order := "asc"
	if lr.desc {
		order = "desc"
	}
	last := lr.last
	if lr.exclLast {
		last += "["
	}
	return fmt.Sprintf("%s ]%s..%s; max=%d, order=%s", lr.field, from, last, lr.max, order)
}

// listPage is the indices of one page of a list and the status to answer it with.
type listPage struct {
	items  []int
	status int
}

// pageList picks the page of a list that the Range header h asks for, sorted by its field, and
// sets Accept-Ranges, Content-Range and, for a truncated page, Next-Range. fields are those the
// list is ranged by, the default first; a page holds at most limit items (0: no limit but max).
// A malformed Range gets a 400 (ok false: answered).
func pageList(w http.ResponseWriter, h string, limit int, fields ...rangeField) (listPage, bool) {
	lr, f, err := parseListRange(h, fields)
	if err != nil {
		herokuError(w, 400, "bad_request", "Invalid Range header: "+err.Error())
		return listPage{}, false
	}
	if limit > 0 {
		lr.max = min(lr.max, limit)
	}
	order := make([]int, len(f.values))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		c := f.compare(f.values[a], f.values[b])
		if lr.desc {
			c = -c
		}
		return c
	})
	// before reports whether a comes before b in the order asked for.
	before := func(a, b string) bool {
		c := f.compare(a, b)
		return c != 0 && (c < 0) != lr.desc
	}
	var within []int
	for _, i := range order {
		k := f.values[i]
		if lr.first != "" && (before(k, lr.first) || lr.exclFirst && f.compare(k, lr.first) == 0) {
			continue
		}
		if lr.last != "" && (before(lr.last, k) || lr.exclLast && f.compare(k, lr.last) == 0) {
			continue
		}
		within = append(within, i)
	}
	w.Header().Set("Accept-Ranges", acceptRanges(fields))
	page := listPage{items: within, status: http.StatusOK}
	if len(within) > lr.max {
		page.items, page.status = within[:lr.max], http.StatusPartialContent
		w.Header().Set("Next-Range", lr.next(f.values[page.items[len(page.items)-1]]))
	}
	if len(page.items) > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("%s %s..%s", lr.field, f.values[page.items[0]], f.values[page.items[len(page.items)-1]]))
	}
	return page, true
}

// writePage answers a list request with the page of items (JSON objects, in the list's order)
// that its Range asks for. s.mu is held.
func (s *Sim) writePage(w http.ResponseWriter, r *http.Request, items []map[string]any, fields ...rangeField) {
	page, ok := pageList(w, r.Header.Get("Range"), s.pageLimit, fields...)
	if !ok {
		return
	}
	out := make([]any, 0, len(page.items))
	for _, i := range page.items {
		out = append(out, items[i])
	}
	writeJSON(w, page.status, out)
}

// writeIDPage pages items by id and by the string field natural (their default order is id's).
// s.mu is held.
func (s *Sim) writeIDPage(w http.ResponseWriter, r *http.Request, items []map[string]any, natural string) {
	str := func(field string) func(i int) string {
		return func(i int) string { s, _ := items[i][field].(string); return s }
	}
	s.writePage(w, r, items, byField("id", len(items), str("id")), byField(natural, len(items), str(natural)))
}
