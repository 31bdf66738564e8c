package dest

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
)

// Pick is the destination a command reads archives from (verify, restore, drill, status): the
// one choice (--destination) names, else the first of all, ARCHIVE_URL's destinations (reading
// changes nothing, so no choice is forced).
func Pick(all []spec.Archive, choice string) (spec.Archive, error) {
	if strings.TrimSpace(choice) == "" && len(all) > 0 {
		return all[0], nil
	}
	return pick(all, choice, among{kinds: "destinations", ones: "destinations", eligible: func(spec.Archive) bool { return true }})
}

// PickAll is the destinations a report reads (status): every one of all when choice is "all"
// or empty, else the one it names.
func PickAll(all []spec.Archive, choice string) ([]spec.Archive, error) {
	if c := strings.TrimSpace(choice); c == "all" || c == "" {
		return all, nil
	}
	a, err := Pick(all, choice)
	if err != nil {
		return nil, err
	}
	return []spec.Archive{a}, nil
}

// PickBucket is the S3 destination a bucket command works on (setup-bucket, policy): the one
// choice names, or the only S3 one. With several and no choice it refuses, listing them, rather
// than guess which bucket to change.
func PickBucket(all []spec.Archive, choice string) (spec.Archive, s3store.Settings, error) {
	a, err := pick(all, choice, among{kinds: "S3 destinations", ones: "S3 ones", eligible: func(a spec.Archive) bool {
		_, ok := s3store.SettingsOf(a)
		return ok
	}})
	s, _ := s3store.SettingsOf(a)
	return a, s, err
}

// among are the destinations a choice is made among: those eligible, named kinds in messages
// ("the ones" when a number names another).
type among struct {
	kinds, ones string
	eligible    func(spec.Archive) bool
}

// pick picks by choice, a number (1-based, ARCHIVE_URL's order counting every destination) or
// a location, among all's eligible destinations.
func pick(all []spec.Archive, choice string, m among) (spec.Archive, error) {
	var eligible []int
	for i, a := range all {
		if m.eligible(a) {
			eligible = append(eligible, i)
		}
	}
	list := func() string {
		var b strings.Builder
		for _, i := range eligible {
			fmt.Fprintf(&b, "\n  --destination %d   (or --destination %s)", i+1, all[i])
		}
		return b.String()
	}
	choice = strings.TrimSpace(choice)
	switch {
	case len(eligible) == 0:
		return spec.Archive{}, fmt.Errorf("ARCHIVE_URL names no s3:// destination: this command works on S3 buckets")
	case choice == "" && len(eligible) == 1:
		return all[eligible[0]], nil
	case choice == "":
		return spec.Archive{}, fmt.Errorf("ARCHIVE_URL names %d %s: say which with one of%s", len(eligible), m.kinds, list())
	}
	if n, err := strconv.Atoi(choice); err == nil {
		if n < 1 || n > len(all) {
			return spec.Archive{}, fmt.Errorf("--destination %d: ARCHIVE_URL names %d destination(s); the %s are%s", n, len(all), m.ones, list())
		}
		if a := all[n-1]; !m.eligible(a) {
			return spec.Archive{}, fmt.Errorf("--destination %d is %s, not an S3 bucket; the %s are%s", n, a, m.ones, list())
		}
		return all[n-1], nil
	}
	want := strings.TrimRight(choice, "/")
	var found []int
	for _, i := range eligible {
		if all[i].String() == want {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 0:
		return spec.Archive{}, fmt.Errorf("--destination %s is not one of ARCHIVE_URL's %s:%s", choice, m.kinds, list())
	case 1:
		return all[found[0]], nil
	}
	// The same bucket and prefix at two endpoints: two providers, told apart by number only.
	return spec.Archive{}, fmt.Errorf("--destination %s names %d destinations (the same bucket at different endpoints): give its number instead:%s", choice, len(found), list())
}
