package dumpsource

import (
	"context"
	"fmt"
	"strconv"

	"github.com/pgoffsite/pgoffsite/internal/scrub"
)

// Probe is what `pgoffsite check` learns of a database a pg_dump backup would dump.
type Probe struct {
	PgDump        string
	ClientVersion string
	ServerVersion string
	Bytes         int64 // pg_database_size: the dump is usually much smaller (compressed, no indexes)
}

// Check connects to db as a backup would, asks its version and size, and refuses a pg_dump
// older than the server; pgDump and secrets as in Source.
func Check(ctx context.Context, db Database, pgDump string, secrets ...string) (Probe, error) {
	var p Probe
	conn, err := Connection(db)
	if err != nil {
		return p, err
	}
	red := scrub.New(append([]string{db.URL, conn.password}, secrets...)...)
	tools, client, server, err := versions(ctx, pgDump, conn, red)
	p.PgDump, p.ClientVersion, p.ServerVersion = tools.PgDump, client.Text, server.Text
	if err != nil {
		return p, err
	}
	out, err := tools.Query(ctx, conn, red, "SELECT pg_database_size(current_database())")
	if err != nil {
		return p, err
	}
	if p.Bytes, err = strconv.ParseInt(out, 10, 64); err != nil {
		return p, fmt.Errorf("the database's size %q is not a number", out)
	}
	return p, nil
}
