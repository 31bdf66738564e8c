package pgrestore

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// CheckTimeout bounds one check statement: a count over a big table takes minutes, not hours.
const CheckTimeout = 10 * time.Minute

// Check runs one statement of the user's against the target, read-only, and reads its answer
// as a boolean: one row of one column, true or false. Anything else is an error saying what
// came back.
func Check(ctx context.Context, o Options, statement string) (bool, error) {
	c := o.conn()
	qctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	cmd := exec.CommandContext(qctx, o.bin("psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", c.dsn, "-c", statement)
	// Read-only: a check looks, it never changes what the next check sees.
	cmd.Env = append(c.env("pgoffsite-"+o.name()+"-check"), "PGOPTIONS=-c default_transaction_read_only=on")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if qctx.Err() != nil && ctx.Err() == nil {
			return false, fmt.Errorf("pgrestore: check gave no answer within %s", CheckTimeout)
		}
		return false, fmt.Errorf("pgrestore: check: %v: %s", err, c.red.Scrub(lastLines(stderr.String(), 3)))
	}
	switch out := strings.TrimSpace(stdout.String()); out {
	case "t":
		return true, nil
	case "f":
		return false, nil
	default:
		if len(out) > 80 {
			out = out[:80] + "..."
		}
		return false, fmt.Errorf("pgrestore: check answered %q, not one boolean (write it as select <condition>)", c.red.Scrub(out))
	}
}
