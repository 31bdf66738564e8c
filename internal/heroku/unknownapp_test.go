package heroku

import (
	"context"
	"strings"
	"testing"
)

// TestSimUnknownAppSaysWhatToDo: an app the key's account cannot see is answered with the fix
// (check BACKUP_TARGETS, heroku apps, heroku access:add), not a bare 404.
func TestSimUnknownAppSaysWhatToDo(t *testing.T) {
	w := newSimWorld(t)
	_, err := w.c.Resolve(context.Background(), "shop-prd", "DATABASE_URL")
	if !IsNotFound(err) {
		t.Fatalf("Resolve of an unknown app = %v, want Heroku's 404", err)
	}
	for _, want := range []string{"404 not found", "HEROKU_API_KEY's account sees no app shop-prd: check the name in BACKUP_TARGETS (`heroku apps`", "heroku access:add EMAIL -a shop-prd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	// A database the app does not have is not mistaken for an unknown app.
	if _, err := w.c.Resolve(context.Background(), "shop", "HEROKU_POSTGRESQL_NOPE"); err == nil || strings.Contains(err.Error(), "sees no app") {
		t.Errorf("Resolve of an unknown database = %v", err)
	}
}
