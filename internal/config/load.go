package config

import (
	"fmt"
	"slices"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
)

// Option is a command-line value that takes a variable's place in one load, read and checked
// as that variable would be: the process environment itself is never changed.
type Option func(*loading)

// loading is one load's environment and what the command's run leaves unread.
type loading struct {
	env    env
	unused []string
}

// WithTargets is `backup --target APP:DATABASE`: that one target instead of BACKUP_TARGETS (and
// of what BACKUP_EXCLUDE leaves out of all: a fan-out's dyno is given a database it kept).
func WithTargets(targets string) Option {
	return func(l *loading) {
		if targets != "" {
			l.env.Targets, l.env.Exclude = targets, ""
		}
	}
}

// Except leaves variables of the command unread in this run: restore into a postgres:// URL
// needs no HEROKU_API_KEY, which restore into a Heroku app does.
func Except(names ...string) Option {
	return func(l *loading) { l.unused = append(l.unused, names...) }
}

// LoadFor reads the process environment for command (one of Commands) and checks it; the error
// is Problems, listing every mistake in the variables the command reads (Describe's Commands),
// when there is any.
func LoadFor(command string, opts ...Option) (Config, error) {
	if !slices.Contains(Commands(), command) {
		return Config{}, fmt.Errorf("config: %q is not a command that reads the environment (%v)", command, Commands())
	}
	e, err := readEnv()
	if err != nil {
		return Config{}, err
	}
	l := loading{env: e}
	for _, o := range opts {
		o(&l)
	}
	c, ps := l.env.validate()
	rows := map[string]VarDoc{}
	for _, d := range Describe() {
		rows[d.Name] = d
	}
	var kept Problems
	for _, p := range ps {
		if !slices.Contains(l.unused, p.Var) && p.stops(command, rows) {
			kept = append(kept, p)
		}
	}
	if len(kept) > 0 {
		return Config{}, kept
	}
	return c, nil
}

// stops tells whether p stops command.
func (p Problem) stops(command string, rows map[string]VarDoc) bool {
	// Where archives are read back, a key that opens them is the point; where they are written,
	// the uploader's environment must not be able to decrypt them.
	if p.decrypts && !slices.Contains(writers, command) {
		return false
	}
	d, described := rows[p.Var]
	if !described {
		// A variable another's value names (env:VAR in BACKUP_TARGETS, keys=NAME or key=NAME in
		// ARCHIVE_URL): read where the targets and destinations are opened.
		return slices.Contains(runs, command)
	}
	return slices.Contains(d.Commands, command)
}

// Load reads the environment for the commands that write archives (backup, bundle, check),
// which read the same variables: LoadFor("backup"). An age identity in that environment is a
// problem: the dyno that uploads must not be able to decrypt.
func Load(opts ...Option) (Config, error) {
	return LoadFor("backup", opts...)
}

// LoadArchive reads what setup-bucket reads — ARCHIVE_URL (s3://), the AWS, S3, BUCKET_,
// RETENTION and log variables — so that it runs before the Heroku side is configured. Its
// Archive is ARCHIVE_URL's first s3:// destination.
func LoadArchive() (Config, error) {
	c, err := LoadFor("setup-bucket")
	if err != nil {
		return c, err
	}
	// Archive is the first S3 destination: the bucket commands have nothing to do with the others.
	for _, a := range c.Archives {
		if _, ok := s3store.SettingsOf(a); ok {
			c.Archive = a
			return c, nil
		}
	}
	msg := "is not an s3:// URL"
	if len(c.Archives) > 1 {
		msg = "names no s3:// destination"
	}
	return Config{}, Problems{{Var: "ARCHIVE_URL", Message: msg,
		Fix: "the bucket commands work on S3 archives: set ARCHIVE_URL=s3://bucket/prefix"}}
}

// ArchiveFromEnv reads ARCHIVE_URL alone, for commands that only need to know where archives
// go: its first destination.
func ArchiveFromEnv() (spec.Archive, error) {
	as, err := ArchivesFromEnv()
	if err != nil {
		return spec.Archive{}, err
	}
	return as[0], nil
}

// ArchivesFromEnv reads ARCHIVE_URL alone, as policy does: every destination, in its order. The
// variables the destinations name (keys=, key=) are not read.
func ArchivesFromEnv() ([]spec.Archive, error) {
	c, err := LoadFor("policy")
	if err != nil {
		return nil, err
	}
	return c.Archives, nil
}
