package filestore

import (
	"context"
	"net/url"
	"path"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Scheme names the kind in ARCHIVE_URL: file:///absolute/dir.
const Scheme = "file"

// Settings are a directory destination's: the directory, absolute and clean.
type Settings struct{ Dir string }

func (s Settings) Location() string     { return "file://" + s.Dir }
func (s Settings) Identity() string     { return s.Location() }
func (s Settings) SecretVars() []string { return nil }

// Archive is the destination s describes.
func (s Settings) Archive() spec.Archive { return spec.Archive{Scheme: Scheme, Settings: s} }

// Kind is a directory: file:///absolute/dir, which reads no other variable.
var Kind spec.Kind = spec.Plain{Parser: Parser{}, OpenStore: open}

// Parser reads file:///absolute/dir destinations.
type Parser struct{}

// GlobalVars: a directory reads no variable.
func (Parser) GlobalVars(spec.Archive) []string { return nil }

func (Parser) TakesUser() bool  { return false }
func (Parser) TakesQuery() bool { return false }

func (Parser) Parse(u *url.URL, r spec.Field) spec.Archive {
	if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
		r.Add(r.Shown()+" is not an absolute directory", "write file:///absolute/dir (three slashes)")
		return spec.Archive{Scheme: Scheme}
	}
	dir := path.Clean(u.Path)
	if dir == "/" {
		// Archives would be written into the root of the filesystem, beside /etc and /usr.
		r.Add(r.Shown()+" is the root directory", "name a directory for the archives, e.g. file:///mnt/archive")
		return spec.Archive{Scheme: Scheme}
	}
	return Settings{Dir: dir}.Archive()
}

func (Parser) EnvChecker(func(string) string) func(spec.Archive, spec.Field) {
	return func(spec.Archive, spec.Field) {}
}

// open opens the directory; the same store reads it.
func open(_ context.Context, _ spec.Env, a spec.Archive) (store.Store, store.Caps, error) {
	s, _ := a.Settings.(Settings)
	st, err := New(s.Dir)
	if err != nil {
		return nil, store.Caps{}, err
	}
	return st, st.Caps(), nil
}
