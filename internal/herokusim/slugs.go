package herokusim

// The app's runtime, for bundles and restore-app (heroku-api.md §10, heroku-go v5's schema):
//
//	POST  /apps {"name","region","stack"}                      → 201 app; 422 name taken
//	GET   /apps/{app}/releases  (Range: version ..; order=desc, max=N)
//	                                                           → [{id, version, current, status, slug: {id}|null, description, ...}],
//	                                                             paged as Heroku pages lists (ranges.go): 206 and Next-Range
//	POST  /apps/{app}/releases {"slug","description"}          → 201 release; 422 slug not uploaded
//	GET   /apps/{app}/slugs/{id}                               → {id, blob{method:"get",url}, checksum:"SHA256:<hex>", size, process_types, stack, commit, ...}
//	POST  /apps/{app}/slugs {"process_types" (required), "checksum", "commit", "stack"}
//	                                                           → 201 slug with blob{method:"put",url}
//	GET|PUT <blob url>                                         (the storage server, signed like backups' URLs)
//	PATCH /apps/{app}/config-vars {"NAME": "value"|null}       → the app's config vars (null removes)
//	GET   /apps/{app}/formation                                → [{id, type, quantity, size, command, ...}]
//	PATCH /apps/{app}/formation {"updates":[{type,quantity,size}]}
//	                                                           → 422 for a process type the current slug lacks
//	GET|PUT /apps/{app}/buildpack-installations {"updates":[{"buildpack"}]}
//	GET   /apps/{app}/domains                                  → [{id, hostname, kind, cname, status, ...}]
//
// Slug blobs are real bytes (tests deploy gzip tarballs); SlugBlobFault makes the blob answer with
// a wrong size or wrong content, as a damaged store would.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Process is one process type's formation.
type Process struct {
	Type     string
	Quantity int
	Size     string
}

type slug struct {
	id           string
	body         []byte
	uploaded     bool
	checksum     string
	processTypes map[string]string
	stack        string
	commit       *string
	created      time.Time
}

type release struct {
	id, description string
	version         int
	slug            *slug
	created         time.Time
}

type appRuntime struct {
	region, stack string
	config        map[string]string
	buildpacks    []string
	formation     map[string]*Process
	slugs         map[string]*slug
	releases      []*release
	domains       []string
	blobFault     string
	generation    string // "cedar" or "fir"
}

// runtimeLocked is the app's runtime, made on first use: region us, stack heroku-24, release v1
// without a slug (Heroku's "Initial release").
func (s *Sim) runtimeLocked(a *app) *appRuntime {
	if s.releases == nil {
		s.releases = map[*app]*appRuntime{}
	}
	rt := s.releases[a]
	if rt == nil {
		rt = &appRuntime{region: "us", stack: "heroku-24", generation: "cedar", config: map[string]string{}, formation: map[string]*Process{},
			slugs: map[string]*slug{}, domains: []string{a.name + ".herokuapp.com"}}
		rt.releases = []*release{{id: newID(), description: "Initial release", version: 1, created: s.now()}}
		s.releases[a] = rt
	}
	return rt
}

// appJSON is the app as the Platform API writes it, in its region, on its stack, of its
// generation (written as a name, as the Heroku CLI's fixtures of Cedar and Fir apps show it).
func (rt *appRuntime) appJSON(a *app) map[string]any {
	m := a.json()
	m["generation"] = rt.generation
	m["region"] = ref(stableID(rt.region), rt.region)
	m["stack"], m["build_stack"] = ref(stableID(rt.stack), rt.stack), ref(stableID(rt.stack), rt.stack)
	return m
}

// SetGeneration makes the app one of Heroku's Fir generation ("fir": OCI images instead of
// slugs) or Cedar ("cedar", the default).
func (s *Sim) SetGeneration(appName, generation string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runtimeLocked(s.appLocked(appName)).generation = generation
}

// SetRegion puts the app in region (e.g. "eu"), as if it had been created there.
func (s *Sim) SetRegion(appName, region string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runtimeLocked(s.appLocked(appName)).region = region
}

func (rt *appRuntime) current() *release { return rt.releases[len(rt.releases)-1] }

// currentSlug is the slug the app runs: that of the newest release with one.
func (rt *appRuntime) currentSlug() *slug {
	for i := len(rt.releases) - 1; i >= 0; i-- {
		if rt.releases[i].slug != nil {
			return rt.releases[i].slug
		}
	}
	return nil
}

func (s *Sim) newReleaseLocked(rt *appRuntime, sl *slug, description string) int {
	v := rt.current().version + 1
	rt.releases = append(rt.releases, &release{id: newID(), description: description, version: v, slug: sl, created: s.now()})
	return v
}

// Deploy releases a new slug of app (a gzip tarball with ./app inside) and returns the release's version.
func (s *Sim) Deploy(appName string, tarball []byte, processTypes map[string]string, commit string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.runtimeLocked(s.appLocked(appName))
	sum := sha256.Sum256(tarball)
	sl := &slug{id: newID(), body: append([]byte(nil), tarball...), uploaded: true, checksum: "SHA256:" + hex.EncodeToString(sum[:]),
		processTypes: processTypes, stack: rt.stack, commit: &commit, created: s.now()}
	rt.slugs[sl.id] = sl
	return s.newReleaseLocked(rt, sl, "Deploy "+commit[:min(len(commit), 8)])
}

// SetConfigVars sets (or, with "", removes) the app's own config vars: a new release running
// the current release's slug.
func (s *Sim) SetConfigVars(appName string, vars map[string]string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.runtimeLocked(s.appLocked(appName))
	return s.setConfigLocked(rt, vars)
}

func (s *Sim) setConfigLocked(rt *appRuntime, vars map[string]string) int {
	names := make([]string, 0, len(vars))
	for k, v := range vars {
		names = append(names, k)
		if v == "" {
			delete(rt.config, k)
		} else {
			rt.config[k] = v
		}
	}
	sort.Strings(names)
	// A config release runs the slug the app runs: Heroku gives it that slug's id (the Heroku
	// CLI's release fixtures show config releases with the deploy's slug).
	return s.newReleaseLocked(rt, rt.current().slug, "Set "+strings.Join(names, ", ")+" config vars")
}

// SetFormation scales the app's process types.
func (s *Sim) SetFormation(appName string, procs ...Process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.runtimeLocked(s.appLocked(appName))
	for _, p := range procs {
		rt.formation[p.Type] = &p
	}
}

// SetBuildpacks sets the app's buildpacks, in order, as a PUT of them would: a registry name
// (heroku/go) is listed in its urn:buildpack: form.
func (s *Sim) SetBuildpacks(appName string, urls ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.runtimeLocked(s.appLocked(appName))
	rt.buildpacks = nil
	for _, u := range urls {
		rt.buildpacks = append(rt.buildpacks, installedAs(u))
	}
}

// installedAs is a buildpack as Heroku lists it once set: a registry name in its urn:buildpack:
// form (the Heroku CLI's fixtures list heroku/ruby as urn:buildpack:heroku/ruby), anything else
// as it was given.
func installedAs(b string) string {
	if registryName.MatchString(b) {
		return "urn:buildpack:" + b
	}
	return b
}

// AddDomain adds a custom domain to the app.
func (s *Sim) AddDomain(appName, hostname string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.runtimeLocked(s.appLocked(appName))
	rt.domains = append(rt.domains, hostname)
}

// SlugBlobFault makes the app's slug blobs answer wrongly: "size" serves one byte fewer than the
// slug's size, "checksum" the right size with one byte changed; "" serves them as they are.
func (s *Sim) SlugBlobFault(appName, mode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runtimeLocked(s.appLocked(appName)).blobFault = mode
}

// AppState is an app's runtime as the simulator holds it, for tests.
type AppState struct {
	Region, Stack string
	Config        map[string]string // the app's own vars, add-on vars not included
	Buildpacks    []string
	Formation     []Process // sorted by type
	Slug          []byte    // of the current release (nil: none)
	ProcessTypes  map[string]string
	Release       int
}

// App returns the app's runtime state; ok is false when there is no such app.
func (s *Sim) App(appName string) (st AppState, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appName]
	if a == nil {
		return st, false
	}
	rt := s.runtimeLocked(a)
	st = AppState{Region: rt.region, Stack: rt.stack, Config: map[string]string{}, Buildpacks: append([]string(nil), rt.buildpacks...), Release: rt.current().version}
	for k, v := range rt.config {
		st.Config[k] = v
	}
	for _, p := range rt.formation {
		st.Formation = append(st.Formation, *p)
	}
	sort.Slice(st.Formation, func(i, j int) bool { return st.Formation[i].Type < st.Formation[j].Type })
	if sl := rt.currentSlug(); sl != nil {
		st.Slug, st.ProcessTypes = append([]byte(nil), sl.body...), sl.processTypes
	}
	return st, true
}

func (s *Sim) releaseJSON(a *app, rt *appRuntime, r *release) map[string]any {
	var sl any
	if r.slug != nil {
		sl = map[string]any{"id": r.slug.id}
	}
	return map[string]any{"id": r.id, "version": r.version, "current": r == rt.current(), "status": "succeeded",
		"slug": sl, "description": r.description, "addon_plan_names": []string{}, "app": ref(a.id, a.name),
		"user": map[string]any{"id": stableID("account"), "email": accountEmail}, "output_stream_url": nil,
		"created_at": rfc3339(r.created), "updated_at": rfc3339(r.created)}
}

func (s *Sim) slugJSON(sl *slug, method string) map[string]any {
	return map[string]any{"id": sl.id, "blob": map[string]any{"method": method, "url": s.signBlobLocked(sl.id)},
		"checksum": sl.checksum, "size": len(sl.body), "process_types": sl.processTypes,
		"stack": ref(stableID(sl.stack), sl.stack), "commit": sl.commit, "commit_description": nil,
		"buildpack_provided_description": nil, "created_at": rfc3339(sl.created), "updated_at": rfc3339(sl.created)}
}

func formationJSON(a *app, p *Process, command string) map[string]any {
	return map[string]any{"id": stableID(a.id + p.Type), "app": ref(a.id, a.name), "type": p.Type, "quantity": p.Quantity,
		"size": p.Size, "command": command, "created_at": rfc3339(a.created), "updated_at": rfc3339(a.created)}
}

const slugPrefix = "/slugs/"

// signBlobLocked is a slug blob's signed URL on the storage server, valid an hour.
func (s *Sim) signBlobLocked(id string) string {
	return s.signPath(slugPrefix+id+".tgz", s.now(), time.Hour)
}

// serveSlugBlob serves GET and PUT of slug blobs on the storage server; false: not a slug blob.
func (s *Sim) serveSlugBlob(w http.ResponseWriter, r *http.Request) bool {
	id, ok := strings.CutPrefix(r.URL.Path, slugPrefix)
	if !ok {
		return false
	}
	id = strings.TrimSuffix(id, ".tgz")
	w.Header().Set("Server", "AmazonS3")
	q := r.URL.Query()
	date, expires, sig := q.Get("X-Amz-Date"), q.Get("X-Amz-Expires"), q.Get("X-Amz-Signature")
	signed, err := time.Parse(amzDate, date)
	if err != nil || !hmac.Equal([]byte(sig), []byte(s.signature(r.URL.Path, date, expires))) {
		s3Error(w, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
		return true
	}
	if secs, _ := strconv.Atoi(expires); s.now().After(signed.Add(time.Duration(secs) * time.Second)) {
		s3Error(w, 403, "AccessDenied", "Request has expired")
		return true
	}
	s.mu.Lock()
	var sl *slug
	var rt *appRuntime
	for _, c := range s.releases {
		if c.slugs[id] != nil {
			sl, rt = c.slugs[id], c
		}
	}
	s.mu.Unlock()
	if sl == nil {
		s3Error(w, 404, "NoSuchKey", "The specified key does not exist.")
		return true
	}
	switch r.Method {
	case http.MethodPut:
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<30))
		if err != nil {
			s3Error(w, 400, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
			return true
		}
		s.mu.Lock()
		sl.body, sl.uploaded = body, true
		s.mu.Unlock()
		w.Header().Set("ETag", fmt.Sprintf(`"%x"`, sha256.Sum256(body)))
		w.WriteHeader(200)
	case http.MethodGet:
		s.mu.Lock()
		body, fault := append([]byte(nil), sl.body...), rt.blobFault
		s.mu.Unlock()
		switch fault {
		case "size":
			body = body[:max(len(body)-1, 0)]
		case "checksum":
			if len(body) > 0 {
				body[len(body)/2] ^= 0xff
			}
		}
		w.Header().Set("Content-Type", "application/x-gzip")
		http.ServeContent(w, r, "", sl.created, bytes.NewReader(body))
	default:
		s3Error(w, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	}
	return true
}

// registryName is a buildpack of Heroku's registry named as the CLI sets it: namespace/name.
var registryName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9._-]*$`)

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		herokuError(w, 400, "bad_request", "Invalid JSON in the request body.")
		return false
	}
	return true
}

func (s *Sim) runtimeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /apps", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Name, Region, Stack string }
		if !decodeBody(w, r, &body) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if body.Name == "" {
			body.Name = "app-" + newID()[:8]
		}
		if s.apps[body.Name] != nil {
			herokuError(w, 422, "invalid_params", "Name "+body.Name+" is already taken")
			return
		}
		a := s.appLocked(body.Name)
		rt := s.runtimeLocked(a)
		if body.Region != "" {
			rt.region = body.Region
		}
		if body.Stack != "" {
			rt.stack = body.Stack
		}
		writeJSON(w, 201, rt.appJSON(a))
	})
	mux.HandleFunc("GET /apps/{app}/releases", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		rt := s.runtimeLocked(a)
		out := make([]map[string]any, len(rt.releases))
		for i, rel := range rt.releases {
			out[i] = s.releaseJSON(a, rt, rel)
		}
		s.writePage(w, r, out, byNumber("version", len(out), func(i int) int { return rt.releases[i].version }),
			byField("id", len(out), func(i int) string { return rt.releases[i].id }))
	}))
	mux.HandleFunc("POST /apps/{app}/releases", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		var body struct {
			Slug        string `json:"slug"`
			Description string `json:"description"`
		}
		if !decodeBody(w, r, &body) {
			return
		}
		rt := s.runtimeLocked(a)
		sl := rt.slugs[body.Slug]
		switch {
		case sl == nil:
			herokuError(w, 404, "not_found", "Couldn't find that slug.")
			return
		case !sl.uploaded:
			herokuError(w, 422, "invalid_params", "Slug has not been uploaded.")
			return
		}
		s.newReleaseLocked(rt, sl, body.Description)
		writeJSON(w, 201, s.releaseJSON(a, rt, rt.current()))
	}))
	mux.HandleFunc("GET /apps/{app}/slugs/{id}", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		sl := s.runtimeLocked(a).slugs[r.PathValue("id")]
		if sl == nil {
			herokuError(w, 404, "not_found", "Couldn't find that slug.")
			return
		}
		writeJSON(w, 200, s.slugJSON(sl, "get"))
	}))
	mux.HandleFunc("POST /apps/{app}/slugs", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		var body struct {
			ProcessTypes map[string]string `json:"process_types"`
			Checksum     string            `json:"checksum"`
			Commit       *string           `json:"commit"`
			Stack        string            `json:"stack"`
		}
		if !decodeBody(w, r, &body) {
			return
		}
		if body.ProcessTypes == nil {
			herokuError(w, 422, "invalid_params", "process_types is required.")
			return
		}
		rt := s.runtimeLocked(a)
		stack := rt.stack
		if body.Stack != "" {
			stack = body.Stack
		}
		sl := &slug{id: newID(), checksum: body.Checksum, processTypes: body.ProcessTypes, stack: stack, commit: body.Commit, created: s.now()}
		rt.slugs[sl.id] = sl
		writeJSON(w, 201, s.slugJSON(sl, "put"))
	}))
	mux.HandleFunc("PATCH /apps/{app}/config-vars", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		var body map[string]*string
		if !decodeBody(w, r, &body) {
			return
		}
		vars := map[string]string{}
		for k, v := range body {
			vars[k] = ""
			if v != nil {
				vars[k] = *v
			}
		}
		rt := s.runtimeLocked(a)
		s.setConfigLocked(rt, vars)
		writeJSON(w, 200, rt.config)
	}))
	mux.HandleFunc("GET /apps/{app}/formation", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		rt := s.runtimeLocked(a)
		var out []map[string]any
		types := []string{}
		for t := range rt.formation {
			types = append(types, t)
		}
		sort.Strings(types)
		sl := rt.currentSlug()
		for _, t := range types {
			cmd := ""
			if sl != nil {
				cmd = sl.processTypes[t]
			}
			out = append(out, formationJSON(a, rt.formation[t], cmd))
		}
		s.writeIDPage(w, r, out, "type")
	}))
	mux.HandleFunc("PATCH /apps/{app}/formation", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		var body struct {
			Updates []struct {
				Type     string `json:"type"`
				Quantity *int   `json:"quantity"`
				Size     string `json:"size"`
			} `json:"updates"`
		}
		if !decodeBody(w, r, &body) {
			return
		}
		rt := s.runtimeLocked(a)
		sl := rt.currentSlug()
		for _, u := range body.Updates {
			if sl == nil || sl.processTypes[u.Type] == "" {
				herokuError(w, 422, "invalid_params", "Couldn't find that process type ("+u.Type+").")
				return
			}
		}
		out := []any{}
		for _, u := range body.Updates {
			p := rt.formation[u.Type]
			if p == nil {
				p = &Process{Type: u.Type, Size: "basic"}
				rt.formation[u.Type] = p
			}
			if u.Quantity != nil {
				p.Quantity = *u.Quantity
			}
			if u.Size != "" {
				p.Size = u.Size
			}
			out = append(out, formationJSON(a, p, sl.processTypes[u.Type]))
		}
		writeJSON(w, 200, out)
	}))
	buildpacks := func(a *app, rt *appRuntime) []map[string]any {
		out := []map[string]any{}
		for i, u := range rt.buildpacks {
			out = append(out, map[string]any{"ordinal": i, "buildpack": map[string]any{"url": u, "name": strings.TrimPrefix(u, "urn:buildpack:")},
				"app": ref(a.id, a.name)})
		}
		return out
	}
	mux.HandleFunc("GET /apps/{app}/buildpack-installations", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		// An installation has no id: the list is ranged by its ordinal only.
		out := buildpacks(a, s.runtimeLocked(a))
		s.writePage(w, r, out, byNumber("ordinal", len(out), func(i int) int { return out[i]["ordinal"].(int) }))
	}))
	mux.HandleFunc("PUT /apps/{app}/buildpack-installations", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		var body struct {
			Updates []struct {
				Buildpack string `json:"buildpack"`
			} `json:"updates"`
		}
		if !decodeBody(w, r, &body) {
			return
		}
		rt := s.runtimeLocked(a)
		rt.buildpacks = nil
		for _, u := range body.Updates {
			rt.buildpacks = append(rt.buildpacks, installedAs(u.Buildpack))
		}
		writeJSON(w, 200, buildpacks(a, rt))
	}))
	mux.HandleFunc("GET /apps/{app}/domains", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		var out []map[string]any
		for _, h := range s.runtimeLocked(a).domains {
			kind, cname := "custom", any(h+".herokudns.com")
			if strings.HasSuffix(h, ".herokuapp.com") {
				kind, cname = "heroku", nil
			}
			out = append(out, map[string]any{"id": stableID(h), "hostname": h, "kind": kind, "cname": cname, "status": "succeeded",
				"app": ref(a.id, a.name), "created_at": rfc3339(a.created), "updated_at": rfc3339(a.created)})
		}
		s.writeIDPage(w, r, out, "hostname")
	}))
}
