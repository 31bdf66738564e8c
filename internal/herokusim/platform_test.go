package herokusim

import (
	"encoding/base64"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

var rfc3339RE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// account is a small Heroku account: shop-core bills a database that shop-web also uses.
type account struct {
	s                           *Sim
	platform, data              string
	mainDB, pinkDB, redis       string // add-on ids
	mainDSN, pinkDSN, redisName string
}

func newAccount(t *testing.T) *account {
	a := &account{s: New(Options{Token: token}),
		mainDSN: "postgres://u:p@127.0.0.1:1/main", pinkDSN: "postgres://u:p@127.0.0.1:1/pink"}
	a.s.AddApp("shop-core")
	a.s.AddApp("shop-web")
	a.mainDB = a.s.AddDatabase("shop-core", "DATABASE", "heroku-postgresql:standard-0", a.mainDSN)
	ns := "credential:analyst"
	a.s.Attach(a.mainDB, "shop-core", "DATABASE", &ns)
	a.pinkDB = a.s.AddDatabase("shop-core", "HEROKU_POSTGRESQL_PINK", "heroku-postgresql:essential-0", a.pinkDSN)
	a.redis = a.s.AddAddon("shop-core", "REDIS", "heroku-redis:mini")
	a.s.Attach(a.mainDB, "shop-web", "SHARED_DB", nil)
	a.platform, a.data = Serve(t, a.s)
	return a
}

func (a *account) resolve(t *testing.T, app, arg string, inclusion bool) answer {
	t.Helper()
	h := []string{"Accept", "application/vnd.heroku+json; version=3.sdk"}
	if inclusion {
		h = append(h, "Accept-Inclusion", "addon:plan,config_vars")
	}
	return call(t, "POST", a.platform+"/actions/addon-attachments/resolve", token,
		map[string]any{"addon_attachment": arg, "app": app}, h...)
}

func TestAuthentication(t *testing.T) {
	a := newAccount(t)
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	for _, c := range []struct {
		name, url, auth string
		want            int
	}{
		{"platform bearer", a.platform + "/account", "Bearer " + token, 200},
		{"platform basic, empty user", a.platform + "/account", basic("", token), 200},
		{"platform basic with a user", a.platform + "/account", basic("ops@example.com", token), 401},
		{"platform wrong key", a.platform + "/account", "Bearer wrong", 401},
		{"platform no key", a.platform + "/account", "", 401},
		{"data bearer", a.data + "/client/v11/databases/" + a.mainDB, "Bearer " + token, 200},
		{"data basic", a.data + "/client/v11/databases/" + a.mainDB, basic("", token), 200},
		{"data wrong key", a.data + "/client/v11/databases/" + a.mainDB, "Bearer " + token + "x", 401},
		{"data no key", a.data + "/client/v11/apps/shop-core/transfers", "", 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			ans := call(t, "GET", c.url, "", nil, "Authorization", c.auth)
			if ans.status != c.want {
				t.Fatalf("status %d, want %d: %s", ans.status, c.want, ans.body)
			}
			if c.want == 401 {
				m := ans.obj(t)
				if m["id"] != "unauthorized" || m["message"] != "Invalid credentials provided." {
					t.Fatalf("401 body %s", ans.body)
				}
			}
		})
	}
}

func TestAccount(t *testing.T) {
	a := newAccount(t)
	ans := call(t, "GET", a.platform+"/account", token, nil)
	m := ans.obj(t)
	if m["email"] == "" || m["id"] == "" || !rfc3339RE.MatchString(m["created_at"].(string)) || !rfc3339RE.MatchString(m["updated_at"].(string)) {
		t.Fatalf("account %s", ans.body)
	}
	if ans.header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", ans.header.Get("Content-Type"))
	}
}

func names(t *testing.T, atts []map[string]any) []string {
	var out []string
	for _, at := range atts {
		ns := "-"
		if v, ok := at["namespace"]; !ok {
			t.Fatalf("attachment without an explicit namespace: %v", at)
		} else if v != nil {
			ns = v.(string)
		}
		out = append(out, at["app"].(map[string]any)["name"].(string)+"/"+at["name"].(string)+"/"+ns)
	}
	sort.Strings(out)
	return out
}

func TestResolve(t *testing.T) {
	a := newAccount(t)
	for _, c := range []struct {
		app, arg string
		want     []string
	}{
		{"shop-core", "DATABASE_URL", []string{"shop-core/DATABASE/-", "shop-core/DATABASE/credential:analyst"}},
		{"shop-core", "DATABASE", []string{"shop-core/DATABASE/-", "shop-core/DATABASE/credential:analyst"}},
		{"shop-core", "heroku_postgresql_pink_url", []string{"shop-core/HEROKU_POSTGRESQL_PINK/-"}},
		{"shop-core", "HEROKU_POSTGRESQL_PINK", []string{"shop-core/HEROKU_POSTGRESQL_PINK/-"}},
		{"shop-core", "REDIS_URL", []string{"shop-core/REDIS/-"}},
		{"shop-web", "SHARED_DB_URL", []string{"shop-web/SHARED_DB/-"}},
		{"shop-web", "shop-core::DATABASE_URL", []string{"shop-core/DATABASE/-", "shop-core/DATABASE/credential:analyst"}},
		{"shop-web", "shop-core::HEROKU_POSTGRESQL_PINK", []string{"shop-core/HEROKU_POSTGRESQL_PINK/-"}},
	} {
		t.Run(c.app+" "+c.arg, func(t *testing.T) {
			ans := a.resolve(t, c.app, c.arg, true)
			if ans.status != 200 {
				t.Fatalf("status %d: %s", ans.status, ans.body)
			}
			got := names(t, ans.list(t))
			if fmtList(got) != fmtList(c.want) {
				t.Fatalf("resolved %v, want %v", got, c.want)
			}
		})
	}

	t.Run("by add-on name, on every app it is attached to", func(t *testing.T) {
		var addonName string
		for _, at := range a.resolve(t, "shop-web", "SHARED_DB", true).list(t) {
			addonName = at["addon"].(map[string]any)["name"].(string)
		}
		if !regexp.MustCompile(`^postgresql-[a-z]+-\d{5}$`).MatchString(addonName) {
			t.Fatalf("add-on name %q", addonName)
		}
		got := names(t, a.resolve(t, "shop-web", addonName, true).list(t))
		if fmtList(got) != "shop-web/SHARED_DB/-" {
			t.Fatalf("resolved %v", got)
		}
	})

	t.Run("inclusion: billing app, plan and config vars", func(t *testing.T) {
		atts := a.resolve(t, "shop-web", "SHARED_DB_URL", true).list(t)
		ad := atts[0]["addon"].(map[string]any)
		if ad["id"] != a.mainDB || ad["app"].(map[string]any)["name"] != "shop-core" || ad["app"].(map[string]any)["id"] == "" {
			t.Fatalf("addon %v: want id %s billed to shop-core", ad, a.mainDB)
		}
		if ad["plan"].(map[string]any)["name"] != "heroku-postgresql:standard-0" {
			t.Fatalf("plan %v", ad["plan"])
		}
		if cv := atts[0]["config_vars"].([]any); len(cv) != 1 || cv[0] != "SHARED_DB_URL" {
			t.Fatalf("config_vars %v", cv)
		}
	})

	t.Run("no inclusion asked, none given", func(t *testing.T) {
		at := a.resolve(t, "shop-core", "DATABASE_URL", false).list(t)[0]
		if _, ok := at["config_vars"]; ok {
			t.Errorf("config_vars without Accept-Inclusion: %v", at)
		}
		if _, ok := at["addon"].(map[string]any)["plan"]; ok {
			t.Errorf("addon.plan without Accept-Inclusion: %v", at)
		}
	})

	for _, c := range []struct{ app, arg, message string }{
		{"shop-core", "NO_SUCH_DATABASE_URL", "Couldn't find that add on attachment."},
		{"shop-web", "DATABASE_URL", "Couldn't find that add on attachment."}, // attached there as SHARED_DB only
		{"no-such-app", "DATABASE_URL", "Couldn't find that app."},
		{"shop-web", "no-such-app::DATABASE_URL", "Couldn't find that app."},
	} {
		t.Run("not found: "+c.app+" "+c.arg, func(t *testing.T) {
			ans := a.resolve(t, c.app, c.arg, true)
			m := ans.obj(t)
			if ans.status != 404 || m["id"] != "not_found" || m["message"] != c.message {
				t.Fatalf("%d %s", ans.status, ans.body)
			}
		})
	}

	t.Run("missing argument", func(t *testing.T) {
		ans := call(t, "POST", a.platform+"/actions/addon-attachments/resolve", token, map[string]any{"app": "shop-core"})
		if ans.status != 422 || ans.obj(t)["id"] != "invalid_params" {
			t.Fatalf("%d %s", ans.status, ans.body)
		}
	})
}

func fmtList(l []string) string { return strings.Join(l, ",") }

func TestAppsAddonsConfigVars(t *testing.T) {
	a := newAccount(t)

	app := call(t, "GET", a.platform+"/apps/shop-core", token, nil).obj(t)
	if app["name"] != "shop-core" || !rfc3339RE.MatchString(app["created_at"].(string)) {
		t.Fatalf("app %v", app)
	}
	if byID := call(t, "GET", a.platform+"/apps/"+app["id"].(string), token, nil).obj(t); byID["name"] != "shop-core" {
		t.Fatalf("app by id %v", byID)
	}
	if ans := call(t, "GET", a.platform+"/apps/nope", token, nil); ans.status != 404 || ans.obj(t)["id"] != "not_found" {
		t.Fatalf("unknown app: %d %s", ans.status, ans.body)
	}

	vars := call(t, "GET", a.platform+"/apps/shop-core/config-vars", token, nil).obj(t)
	if vars["DATABASE_URL"] != a.mainDSN || vars["HEROKU_POSTGRESQL_PINK_URL"] != a.pinkDSN || vars["REDIS_URL"] == nil || len(vars) != 3 {
		t.Fatalf("config vars %v", vars)
	}
	if web := call(t, "GET", a.platform+"/apps/shop-web/config-vars", token, nil).obj(t); web["SHARED_DB_URL"] != a.mainDSN || len(web) != 1 {
		t.Fatalf("shop-web config vars %v", web)
	}

	atts := call(t, "GET", a.platform+"/apps/shop-core/addon-attachments", token, nil).list(t)
	if got := fmtList(names(t, atts)); got != "shop-core/DATABASE/-,shop-core/DATABASE/credential:analyst,shop-core/HEROKU_POSTGRESQL_PINK/-,shop-core/REDIS/-" {
		t.Fatalf("attachments %s", got)
	}

	plans := func(header ...string) (out []string) {
		for _, at := range call(t, "GET", a.platform+"/apps/shop-core/addon-attachments", token, nil, header...).list(t) {
			if p, ok := at["addon"].(map[string]any)["plan"].(map[string]any); ok {
				out = append(out, p["name"].(string))
			}
		}
		sort.Strings(out)
		return out
	}
	if got := fmtList(plans("Accept-Inclusion", "addon:plan,config_vars")); got != "heroku-postgresql:essential-0,heroku-postgresql:standard-0,heroku-postgresql:standard-0,heroku-redis:mini" {
		t.Fatalf("plans listed with Accept-Inclusion: %s", got)
	}
	if got := plans(); len(got) != 0 {
		t.Fatalf("plans listed without Accept-Inclusion: %v", got)
	}

	ad := call(t, "GET", a.platform+"/addons/"+a.mainDB, token, nil).obj(t)
	if ad["plan"].(map[string]any)["name"] != "heroku-postgresql:standard-0" || ad["app"].(map[string]any)["name"] != "shop-core" {
		t.Fatalf("addon %v", ad)
	}
	byName := call(t, "GET", a.platform+"/addons/"+ad["name"].(string), token, nil).obj(t)
	if byName["id"] != a.mainDB {
		t.Fatalf("addon by name %v", byName)
	}
	on := call(t, "GET", a.platform+"/addons/"+a.mainDB+"/addon-attachments", token, nil).list(t)
	if got := fmtList(names(t, on)); got != "shop-core/DATABASE/-,shop-core/DATABASE/credential:analyst,shop-web/SHARED_DB/-" {
		t.Fatalf("attachments of the add-on %s", got)
	}
	if ans := call(t, "GET", a.platform+"/addons/00000000-0000-0000-0000-000000000000", token, nil); ans.status != 404 || ans.obj(t)["id"] != "not_found" {
		t.Fatalf("unknown addon: %d %s", ans.status, ans.body)
	}
}

func TestPlatformHeadersAndRequestLog(t *testing.T) {
	a := newAccount(t)
	first := call(t, "GET", a.platform+"/account", token, nil, "Request-Id", "4f1c1d2e-0000-4000-8000-000000000001")
	second := call(t, "GET", a.platform+"/account", token, nil)
	n1, err1 := strconv.Atoi(first.header.Get("RateLimit-Remaining"))
	n2, err2 := strconv.Atoi(second.header.Get("RateLimit-Remaining"))
	if err1 != nil || err2 != nil || n2 >= n1 || n1 > 4500 {
		t.Fatalf("RateLimit-Remaining %q then %q", first.header.Get("RateLimit-Remaining"), second.header.Get("RateLimit-Remaining"))
	}
	if first.header.Get("Request-Id") != "4f1c1d2e-0000-4000-8000-000000000001" || second.header.Get("Request-Id") == "" {
		t.Errorf("Request-Id %q, %q", first.header.Get("Request-Id"), second.header.Get("Request-Id"))
	}
	if d := call(t, "GET", a.data+"/client/v11/databases/"+a.mainDB, token, nil); d.header.Get("RateLimit-Remaining") != "" {
		t.Errorf("the Data API sent RateLimit-Remaining")
	}

	reqs := a.s.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests recorded, want 3: %+v", len(reqs), reqs)
	}
	r := reqs[0]
	if r.API != "platform" || r.Method != "GET" || r.Path != "/account" || r.Header.Get("Authorization") != "Bearer "+token {
		t.Errorf("recorded %+v", r)
	}
	if reqs[2].API != "data" || reqs[2].Path != "/client/v11/databases/"+a.mainDB {
		t.Errorf("recorded %+v", reqs[2])
	}
}

func TestDatabaseInfo(t *testing.T) {
	a := newAccount(t)
	ans := call(t, "GET", a.data+"/client/v11/databases/"+a.mainDB, token, nil)
	m := ans.obj(t)
	info := map[string]string{}
	for _, e := range m["info"].([]any) {
		e := e.(map[string]any)
		vals := e["values"].([]any)
		if len(vals) > 0 {
			info[e["name"].(string)] = vals[0].(string)
		}
	}
	if info["Plan"] != "Standard 0" || info["Status"] != "Available" || info["PG Version"] == "" || info["Data Size"] == "" {
		t.Fatalf("info %v", info)
	}
	if !dataTimeRE.MatchString(m["created_at"].(string)) {
		t.Errorf("created_at %v", m["created_at"])
	}

	// An unknown database, and an add-on that is no database: the Data API's HTML 404.
	for _, id := range []string{"11111111-2222-3333-4444-555555555555", a.redis} {
		for _, method := range []string{"GET", "POST"} {
			path := "/client/v11/databases/" + id
			if method == "POST" {
				path += "/backups"
			}
			ans := call(t, method, a.data+path, token, nil)
			if ans.status != 404 || string(ans.body) != "<h1>Not Found</h1>" || ans.header.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s: %d %q %q", method, path, ans.status, ans.header.Get("Content-Type"), ans.body)
			}
		}
	}
}

func TestRateLimitBudget(t *testing.T) {
	clk := newClock()
	s := New(Options{Token: token, Now: clk.Now})
	platform, _ := Serve(t, s)
	s.mu.Lock()
	s.rateLeft = 1
	s.mu.Unlock()

	if a := call(t, "GET", platform+"/account", token, nil); a.status != 200 || a.header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("last token: %d, RateLimit-Remaining %q", a.status, a.header.Get("RateLimit-Remaining"))
	}
	a := call(t, "GET", platform+"/account", token, nil)
	if a.status != 429 || a.obj(t)["id"] != "rate_limit" || a.header.Get("Retry-After") != "1" {
		t.Fatalf("over the limit: %d %v %s", a.status, a.header, a.body)
	}
	clk.Advance(2 * time.Second) // 75 tokens a minute: two more
	if a := call(t, "GET", platform+"/account", token, nil); a.status != 200 || a.header.Get("RateLimit-Remaining") != "1" {
		t.Fatalf("after the refill: %d, RateLimit-Remaining %q", a.status, a.header.Get("RateLimit-Remaining"))
	}
}
