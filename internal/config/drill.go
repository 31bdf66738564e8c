package config

import (
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// Drill is what `pgoffsite drill` reads: the plan of the throwaway database, the user's checks,
// and the time limit of one drill.
type Drill struct {
	Plan    heroku.PostgresPlan // DRILL_PLAN
	Checks  []string            // DRILL_CHECKS: SQL statements, each answering one boolean
	Timeout time.Duration       // DRILL_TIMEOUT
}

func (ck *checker) drill(e env) Drill {
	var d Drill
	plan, ok := heroku.FindPostgresPlan(e.DrillPlan)
	if !ok {
		var names []string
		for _, p := range heroku.PostgresPlans {
			names = append(names, strings.TrimPrefix(p.Name, "heroku-postgresql:"))
		}
		ck.add("DRILL_PLAN", ck.q(e.DrillPlan)+" is not a Heroku Postgres plan pgoffsite knows the storage of",
			"use one of heroku-postgresql:"+strings.Join(names, ", "))
	}
	d.Plan = plan
	d.Checks = SplitStatements(e.DrillChecks)
	if strings.TrimSpace(e.DrillChecks) != "" && len(d.Checks) == 0 {
		ck.add("DRILL_CHECKS", "holds no statement", "write SQL statements separated by ;, each answering one boolean, e.g. select count(*) > 0 from orders")
	}
	d.Timeout = ck.duration("DRILL_TIMEOUT", e.DrillTimeout)
	return d
}

// SplitStatements splits SQL text at the semicolons that end statements: not those inside
// quotes ('...', "...") or dollar quotes ($$...$$). Empty statements are dropped.
func SplitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	var quote string // "", "'", "\"" or a dollar tag such as "$$"
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case quote != "":
			if strings.HasPrefix(sql[i:], quote) {
				cur.WriteString(quote)
				i += len(quote) - 1
				quote = ""
				continue
			}
		case c == '\'' || c == '"':
			quote = string(c)
		case c == '$':
			if j := strings.IndexByte(sql[i+1:], '$'); j >= 0 && isTag(sql[i+1:i+1+j]) {
				quote = sql[i : i+j+2]
				cur.WriteString(quote)
				i += j + 1
				continue
			}
		case c == ';':
			flush()
			continue
		}
		cur.WriteByte(c)
	}
	flush()
	return out
}

func isTag(s string) bool {
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
