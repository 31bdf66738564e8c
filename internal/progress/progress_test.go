package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// The line shows every streaming target, redrawn whole, never one target's part over another's,
// and is cleared of a target once its bytes have stopped.
func TestLineShowsEveryStreamingTarget(t *testing.T) {
	var out bytes.Buffer
	l := NewLine(&out)
	a, b := archive.Target{App: "a-app", Database: "DATABASE"}, archive.Target{App: "b-app", Database: "DATABASE"}
	l.Event(archive.Event{Kind: archive.Finished, Target: a, Label: "a b042"}) // never started: nothing drawn
	l.Event(archive.Event{Kind: archive.Started, Target: a, Label: "a-app:DATABASE b042", Total: 4 << 20})
	l.Event(archive.Event{Kind: archive.Started, Target: b, Label: "b-app:DATABASE b042", Total: store.UnknownSize})
	if out.Len() != 0 {
		t.Fatalf("drawn before any bytes: %q", out.String())
	}
	l.Event(archive.Event{Kind: archive.Bytes, Target: a, Label: "a-app:DATABASE b042", Bytes: 1 << 20, Total: 4 << 20, Elapsed: time.Second})
	l.Event(archive.Event{Kind: archive.Bytes, Target: b, Label: "b-app:DATABASE b042", Bytes: 2 << 20, Total: store.UnknownSize, Elapsed: time.Second})
	l.Event(archive.Event{Kind: archive.Finished, Target: a, Label: "a-app:DATABASE b042", Destination: "mem"})
	l.Event(archive.Event{Kind: archive.Phase, Target: a, Phase: archive.PhaseManifest})
	l.Event(archive.Event{Kind: archive.Finished, Target: b, Label: "b-app:DATABASE b042"})
	frames := strings.Split(out.String(), "\r\033[K")[1:]
	want := []string{
		"a-app:DATABASE b042  1.0 MiB / 4.0 MiB   25%  1.0 MiB/s  ETA 3s",
		"a-app:DATABASE b042  1.0 MiB / 4.0 MiB   25%  1.0 MiB/s  ETA 3s  |  b-app:DATABASE b042  2.0 MiB  2.0 MiB/s",
		"b-app:DATABASE b042  2.0 MiB  2.0 MiB/s",
		"",
	}
	if strings.Join(frames, "\n") != strings.Join(want, "\n") {
		t.Errorf("frames\n%q\nwant\n%q", frames, want)
	}
}
