package cli

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// ARCHIVE_RECIPIENTS set after a release was bundled without them: the next bundle archives the
// release's config values and release-config.json naming them (not "already archived"), and
// restore-app --from shop@latest deploys them.
func TestBundleCompletedWhenRecipientsAdded(t *testing.T) {
	w := newWorld(t)
	app := newBundleApp(t, w)
	if code, _ := w.run(w.env("shop"), "bundle"); code != ExitOK {
		t.Fatalf("bundle without ARCHIVE_RECIPIENTS: exit %d", code)
	}
	key := testenv.NewAgeKey(t)
	env := w.env("shop")
	env["ARCHIVE_RECIPIENTS"] = key.Recipient
	code, out := w.run(env, "bundle")
	if code != ExitOK || strings.Contains(out, "already archived") || !strings.Contains(out, "completed with its config values") {
		t.Fatalf("bundle with ARCHIVE_RECIPIENTS added: exit %d, output %s", code, out)
	}
	v := fmt.Sprintf("pgbackups/shop/_app/v%d/", app.release)
	want := []string{v + "config.age", v + "release-config.json", v + "release.json", v + "slug.tgz"}
	if got := w.bundleKeys(); !reflect.DeepEqual(got, want) {
		t.Fatalf("bundle objects %v, want %v", got, want)
	}
	assertNoValue(t, app.all, "the log", []byte(out))
	if code, out := w.run(env, "bundle"); code != ExitOK || !strings.Contains(out, "already archived") {
		t.Errorf("a third bundle: exit %d, want already archived: %s", code, out)
	}

	renv := w.env("shop")
	renv["AGE_IDENTITY"] = key.Text
	if code, out := w.run(renv, "restore-app", "--from", "shop@latest", "--to", "shop-restored", "--confirm", "shop-restored"); code != ExitOK {
		t.Fatalf("restore-app: exit %d: %s", code, out)
	}
	if st, _ := w.sim.App("shop-restored"); !reflect.DeepEqual(st.Config, app.vars) {
		t.Errorf("the restored app has %d config vars, want the original's %d", len(st.Config), len(app.vars))
	}
}
