package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pgoffsite/pgoffsite/internal/archive"
)

// Version is the version of the lines a child writes for its coordinator, described in
// docs/fanout-result.md. A change that a reader of the previous version would misread (a field
// renamed, removed, or given another meaning) takes the next version; fields may be added
// without one.
const Version = 1

// MaxLine bounds a line a child writes: Heroku splits log lines over 10,000 bytes (its prefix
// included), and a split line would not parse. Error texts are shortened to fit, never the
// fields the coordinator needs.
const MaxLine = 8192

// The keys that begin each kind of line, holding its version.
const (
	resultKey = "pgoffsite_result"
	uploadKey = "pgoffsite_upload"
)

// Statuses of a result and of each copy.
const (
	statusArchived        = "archived"
	statusAlreadyArchived = "already_archived"
	statusFailed          = "failed"
)

// resultLine is a child's outcome for its target, written once, last.
type resultLine struct {
	Version  int        `json:"pgoffsite_result"`
	App      string     `json:"app"`
	Database string     `json:"database"`
	Status   string     `json:"status"`
	Backup   string     `json:"backup,omitempty"`
	Bytes    int64      `json:"bytes"`
	Location string     `json:"location,omitempty"`
	Copies   []copyLine `json:"copies,omitempty"`
	Error    string     `json:"error,omitempty"`
}

type copyLine struct {
	Destination string `json:"destination"`
	Location    string `json:"location,omitempty"`
	Status      string `json:"status"`
	Error       string `json:"error,omitempty"`
}

// uploadLine names a multipart upload the child opened, written as it opens it: the
// coordinator aborts it should the child die before it does so itself.
type uploadLine struct {
	Version  int    `json:"pgoffsite_upload"`
	Location string `json:"location"`
	UploadID string `json:"upload_id"`
}

// ResultLine is the line that reports r, ending in a newline, with every text passed through
// scrub first (the coordinator logs what it reads) and at most MaxLine bytes long.
func ResultLine(r archive.Result, scrub func(string) string) []byte {
	l := resultLine{Version: Version, App: scrub(r.Target.App), Database: scrub(r.Target.Database), Status: statusOf(r.Err, r.AlreadyArchived),
		Backup: scrub(r.Backup), Bytes: r.Bytes, Location: scrub(r.Location), Error: errText(r.Err, scrub)}
	for _, c := range r.Copies {
		l.Copies = append(l.Copies, copyLine{Destination: scrub(c.Destination), Location: scrub(c.Location),
			Status: statusOf(c.Err, c.AlreadyArchived), Error: errText(c.Err, scrub)})
	}
	return fit(l)
}

func statusOf(err error, already bool) string {
	switch {
	case err != nil:
		return statusFailed
	case already:
		return statusAlreadyArchived
	}
	return statusArchived
}

func errText(err error, scrub func(string) string) string {
	if err == nil {
		return ""
	}
	return scrub(err.Error())
}

// fit encodes l within MaxLine: the error texts are shortened (after scrubbing, so that no part
// of a secret survives a cut), and, should the rest still be too long, the copies left out.
func fit(l resultLine) []byte {
	b := encode(l)
	full := l
	for limit := MaxLine; len(b) > MaxLine && limit > 0; limit = limit * 3 / 4 {
		l.Error = shorten(full.Error, limit)
		l.Copies = append([]copyLine(nil), full.Copies...)
		for i := range l.Copies {
			l.Copies[i].Error = shorten(full.Copies[i].Error, limit/(len(l.Copies)+1))
		}
		b = encode(l)
	}
	if len(b) > MaxLine {
		l.Copies = nil
		b = encode(l)
	}
	return b
}

const cut = "… (shortened)"

// shorten cuts s to at most n bytes, on a character boundary, saying so.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n = max(0, n-len(cut))
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + cut
}

func encode(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(v) // plain strings and numbers: it cannot fail
	return buf.Bytes()
}

// A child repeats its result lines every ResultEvery for ResultHold before it exits: logplex
// ends streams, and a line written while the coordinator's stream was down, or scrolled out of
// the replay of a busy app's log, would otherwise be lost. The coordinator follows the child
// until it exits, reading its state if Heroku's exit line does not come within ResultHold.
const (
	ResultEvery = 5 * time.Second
	ResultHold  = 15 * time.Second
)

// Repeat calls write now, then every ResultEvery until ResultHold has passed or ctx ends (the
// dyno is stopped).
func Repeat(ctx context.Context, write func()) {
	write()
	t := time.NewTicker(ResultEvery)
	defer t.Stop()
	hold := time.NewTimer(ResultHold)
	defer hold.Stop()
	for {
		select {
		case <-t.C:
			write()
		case <-hold.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// UploadLine is the line that names an upload the child opened, ending in a newline.
func UploadLine(location, uploadID string) []byte {
	return encode(uploadLine{Version: Version, Location: location, UploadID: uploadID})
}

// line is what a child's output line says to its coordinator: a result, an upload, or nothing.
type line struct {
	kind   string // resultKey or uploadKey
	result *archive.Result
	upload *uploadLine
	err    error // a line of this schema that cannot be read: another version, or damaged
}

// parseLine reads a line of a child's output (Heroku's prefix removed) for target t.
func parseLine(t archive.Target, text string) (line, bool) {
	text = strings.TrimSpace(text)
	var kind string
	switch {
	case strings.HasPrefix(text, `{"`+resultKey+`":`):
		kind = resultKey
	case strings.HasPrefix(text, `{"`+uploadKey+`":`):
		kind = uploadKey
	default:
		return line{}, false
	}
	var v struct {
		Result *int `json:"pgoffsite_result"`
		Upload *int `json:"pgoffsite_upload"`
	}
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return line{kind: kind, err: fmt.Errorf("the child's %s line cannot be read (%v): it was cut or damaged on its way through Heroku's logs", kind, err)}, true
	}
	version := v.Result
	if kind == uploadKey {
		version = v.Upload
	}
	if version == nil || *version != Version {
		got := "no version"
		if version != nil {
			got = fmt.Sprintf("version %d", *version)
		}
		return line{kind: kind, err: fmt.Errorf("the child wrote a %s line of %s; this coordinator reads version %d: the coordinator and its children run different pgoffsite releases — deploy one release and run again (see docs/fanout-result.md)", kind, got, Version)}, true
	}
	if kind == uploadKey {
		var u uploadLine
		json.Unmarshal([]byte(text), &u) // it parsed above
		return line{kind: kind, upload: &u}, true
	}
	var l resultLine
	json.Unmarshal([]byte(text), &l)
	if l.App != t.App || l.Database != t.Database {
		// Each child archives the one target it was started for: a result of another is not its own.
		return line{kind: kind, err: fmt.Errorf("the child started for %s reported a result for %s:%s: it is not this target's result (a dyno running another command, or another release's child)", t, l.App, l.Database)}, true
	}
	return line{kind: kind, result: resultOf(t, l)}, true
}

// resultOf is the archive.Result a result line reports for target t.
func resultOf(t archive.Target, l resultLine) *archive.Result {
	r := &archive.Result{Target: t, Backup: l.Backup, Bytes: l.Bytes, Location: l.Location}
	var err error
	r.AlreadyArchived, err = readStatus(l.Status, l.Error)
	r.Err = err
	for _, c := range l.Copies {
		ac := archive.Copy{Destination: c.Destination, Location: c.Location}
		ac.AlreadyArchived, ac.Err = readStatus(c.Status, c.Error)
		r.Copies = append(r.Copies, ac)
	}
	return r
}

// readStatus reads a status: anything but archived or already archived is a failure.
func readStatus(status, msg string) (already bool, err error) {
	switch status {
	case statusArchived:
		return false, nil
	case statusAlreadyArchived:
		return true, nil
	}
	if msg == "" {
		msg = "the child reported status " + status
	}
	return false, errors.New(msg)
}
