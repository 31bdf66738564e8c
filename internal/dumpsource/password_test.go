package dumpsource

import (
	"context"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// A wrong password fails the target with the server's words, naming the target, and the
// password tried appears nowhere; the right one dumps.
func TestWrongPassword(t *testing.T) {
	pg := testenv.StartPostgres(t)
	right := pg.PasswordRole(t, "dumpsource_pw", "right-pa55word", "postgres")
	wrong := strings.Replace(right, "right-pa55word", password, 1)
	j, mem, logs := newJob(t, envSource(wrong))
	res := j.Archive(context.Background(), envTarget)
	if res.Err == nil || !strings.Contains(res.Err.Error(), `password authentication failed for user "dumpsource_pw"`) || !strings.Contains(res.Err.Error(), "env:SHOP_DATABASE_URL") {
		t.Fatalf("err = %v", res.Err)
	}
	if strings.Contains(res.Err.Error()+logs.String(), password) || mem.Len() != 0 {
		t.Errorf("password shown or objects stored: %v", res.Err)
	}
	j, _, logs = newJob(t, envSource(right))
	if res := j.Archive(context.Background(), envTarget); res.Err != nil || strings.Contains(logs.String(), "right-pa55word") {
		t.Fatalf("err = %v", res.Err)
	}
}
