package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/config/envlist"
)

// recipientItems is envlist.Split for ARCHIVE_RECIPIENTS, whose SSH keys have spaces of their own
// ("ssh-ed25519 AAAA… comment"): within a line, an item that does not start a key belongs to the
// one before it. Lines starting with # are comments, left as they are. The result has one
// recipient per line, as agecrypt.ParseRecipients reads them.
func recipientItems(raw string) string {
	var out []string
	for _, line := range strings.Split(raw, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			out = append(out, line)
			continue
		}
		for i, item := range envlist.Split(line) {
			if i > 0 && !startsKey(item) {
				out[len(out)-1] += " " + item
				continue
			}
			out = append(out, item)
		}
	}
	return strings.Join(out, "\n")
}

// startsKey reports whether item is the first word of a key, public or private, as a recipients
// list may hold it: age recipients and identities, SSH public keys, a PEM block's first line.
func startsKey(item string) bool {
	for _, p := range []string{"age1", "AGE-", "ssh-", "ecdsa-", "sk-", "-----BEGIN"} {
		if len(item) >= len(p) && strings.EqualFold(item[:len(p)], p) {
			return true
		}
	}
	return false
}

// parseDuration is the one rule for a duration in a variable: a Go duration (90m, 26h, 1h30m),
// with days too (1d, 7d, 1d12h); a day is 24 hours.
func parseDuration(raw string) (time.Duration, error) {
	s := strings.TrimSpace(raw)
	days, rest, hasDays := strings.Cut(s, "d")
	if !hasDays {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseUint(days, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q: want a whole number of days before d, e.g. 1d or 7d", raw)
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest == "" {
		return d, nil
	}
	more, err := time.ParseDuration(rest)
	if err != nil || more < 0 {
		return 0, fmt.Errorf("%q: want hours, minutes or seconds after the days, e.g. 1d12h", raw)
	}
	return d + more, nil
}

// duration reads a positive duration of variable v (parseDuration).
func (ck *checker) duration(v, raw string) time.Duration {
	d, err := parseDuration(raw)
	switch {
	case err != nil:
		ck.add(v, ck.q(raw)+" is not a duration", "write it like 1d, 26h, 90m or 1h30m")
	case d <= 0:
		ck.add(v, ck.q(raw)+" is not positive", "write a positive duration like 1d or 26h")
	}
	return d
}
