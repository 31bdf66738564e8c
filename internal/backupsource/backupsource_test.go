package backupsource

import (
	"context"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/dumpsource"
	"github.com/pgoffsite/pgoffsite/internal/forksource"
	"github.com/pgoffsite/pgoffsite/internal/pgbackups"
)

type counted struct{ n *int }

func (c counted) Open(context.Context, archive.Target) (archive.Backup, error) {
	*c.n++
	return archive.Backup{}, nil
}

// env:VAR targets go to pg_dump, the others to the Heroku source; BACKUP_METHOD picks that one.
func TestSourcesRoute(t *testing.T) {
	var heroku, env int
	s := sources{heroku: counted{&heroku}, env: counted{&env}}
	s.Open(context.Background(), archive.Target{App: "shop", Database: "DATABASE_URL"})
	s.Open(context.Background(), archive.Target{Database: "REPLICA_URL", Env: true})
	s.Open(context.Background(), archive.Target{Database: "OTHER_URL", Env: true})
	if heroku != 1 || env != 2 {
		t.Errorf("Heroku source opened %d times, pg_dump %d", heroku, env)
	}
	if _, ok := New(Options{PgDump: true}).(sources).heroku.(*dumpsource.Source); !ok {
		t.Error("BACKUP_METHOD=pg_dump: Heroku targets are not pg_dumped")
	}
	if f, ok := New(Options{Fork: &forksource.Source{}, PgDumpPath: "/opt/pg_dump"}).(sources).heroku.(*forksource.Source); !ok || f.Dump.PgDump != "/opt/pg_dump" {
		t.Error("BACKUP_METHOD=fork: Heroku targets are not dumped from forks with PG_DUMP_PATH")
	}
	if _, ok := New(Options{}).(sources).heroku.(*pgbackups.Source); !ok {
		t.Error("Heroku targets do not come from Heroku's backups")
	}
}
