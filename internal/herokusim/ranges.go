package herokusim

// Lists page as the Platform API pages them (its reference, "Ranges"): the client asks with
//
//	Range: version ]41..; max=200, order=desc
//
// (field, an optional exclusive "]" before the first value and "[" after the last, max up to
// 1000, default 200, order asc or desc). An answer holding the whole of what was asked is 200; a
// truncated one is 206 Partial Content with Next-Range, which the client sends back as Range for
// the next page. Content-Range names the first and last value of the page.

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

const (
	defaultPageSize = 200
	maxPageSize     = 1000
)

// listRange is a parsed Range header of a list request.
type listRange struct {
	field       string
	first, last string // "" for open
	exclFirst   bool   // ]first
	exclLast    bool   // last[
	max         int
	desc        bool
}

func parseListRange(h, field string) (listRange, error) {
	lr := listRange{field: field, max: defaultPageSize}
	h = strings.TrimSpace(h)
	if h == "" {
		return lr, nil
	}
	spec, params, _ := strings.Cut(h, ";")
	f, bounds, _ := strings.Cut(strings.TrimSpace(spec), " ")
	if f != field {
		return lr, fmt.Errorf("the simulator pages this list by %s only, not by %q", field, f)
	}
	first, last, ok := strings.Cut(strings.TrimSpace(bounds), "..")
	if !ok {
		return lr, fmt.Errorf("range %q has no ..", bounds)
	}
	lr.first, lr.exclFirst = strings.CutPrefix(first, "]")
	lr.last, lr.exclLast = strings.CutSuffix(last, "[")
	for _, p := range strings.FieldsFunc(params, func(r rune) bool { return r == ',' || r == ';' }) {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch k {
		case "max":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return lr, fmt.Errorf("max=%s is not a page size", v)
			}
			lr.max = min(n, maxPageSize)
		case "order":
			if v != "asc" && v != "desc" {
				return lr, fmt.Errorf("order=%s is neither asc nor desc", v)
			}
			lr.desc = v == "desc"
		}
	}
	return lr, nil
}

// next is the Range of the page after the one that ended with the value from.
func (lr listRange) next(from int) string {
	order := "asc"
	if lr.desc {
		order = "desc"
	}
	last := lr.last
	if lr.exclLast {
		last += "["
	}
	return fmt.Sprintf("%s ]%d..%s; max=%d, order=%s", lr.field, from, last, lr.max, order)
}

// listPage is the indices of one page of a list and the status to answer it with.
type listPage struct {
	items  []int
	status int
}

// pageList picks the page of keys (ascending, as the list holds them) that the Range header h
// asks for, and sets Content-Range, Accept-Ranges and, for a truncated page, Next-Range. A
// malformed Range gets a 400 (ok false: answered).
func pageList(w http.ResponseWriter, h, field string, keys []int) (listPage, bool) {
	lr, err := parseListRange(h, field)
	if err != nil {
		herokuError(w, 400, "bad_request", "Invalid Range header: "+err.Error())
		return listPage{}, false
	}
	bound := func(s string) (int, bool) {
		if s == "" {
			return 0, false
		}
		n, err := strconv.Atoi(s)
		return n, err == nil
	}
	first, hasFirst := bound(lr.first)
	last, hasLast := bound(lr.last)
	// before reports whether a comes before b in the order asked for.
	before := func(a, b int) bool { return a < b != lr.desc && a != b }
	var within []int
	for n := range keys {
		i := n
		if lr.desc {
			i = len(keys) - 1 - n
		}
		k := keys[i]
		if hasFirst && (before(k, first) || lr.exclFirst && k == first) {
			continue
		}
		if hasLast && (before(last, k) || lr.exclLast && k == last) {
			continue
		}
		within = append(within, i)
	}
	w.Header().Set("Accept-Ranges", "id, version")
	page := listPage{items: within, status: http.StatusOK}
	if len(within) > lr.max {
		page.items, page.status = within[:lr.max], http.StatusPartialContent
		w.Header().Set("Next-Range", lr.next(keys[page.items[len(page.items)-1]]))
	}
	if len(page.items) > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("%s %d..%d", field, keys[page.items[0]], keys[page.items[len(page.items)-1]]))
	}
	return page, true
}
