package heroku

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	hk "github.com/heroku/heroku-go/v5"
)

// An app's runtime, read for bundles and written by restore-app (heroku-api.md §10; shapes from
// heroku-go v5.5.0's schema).

// AppInfo is where an app runs: GET /apps/{app}.
type AppInfo struct {
	Name       string `json:"name"`
	Region     string `json:"region"`
	Stack      string `json:"stack"`
	Space      string `json:"space,omitempty"`
	Generation string `json:"generation"` // GenerationCedar or GenerationFir
}

// Release is one of an app's releases; SlugID is "" for a release without a slug.
type Release struct {
	ID          string
	Version     int
	Current     bool
	Status      string
	SlugID      string
	Description string
}

// Slug is a slug and its one-hour blob URL.
type Slug struct {
	ID           string
	BlobURL      string
	Checksum     string // "SHA256:<hex>"
	Size         int64
	ProcessTypes map[string]string
	Stack        string
	Commit       string
}

// Process is one process type's formation.
type Process struct {
	Type     string `json:"type"`
	Quantity int    `json:"quantity"`
	Size     string `json:"size"`
	Command  string `json:"command,omitempty"`
}

// AddonUse is an add-on attached to the app: its service and plan, the names it is attached as,
// and the config vars it sets.
type AddonUse struct {
	Name        string   `json:"name"`
	Service     string   `json:"service"`
	Plan        string   `json:"plan"`
	Attachments []string `json:"attachments"`
	ConfigVars  []string `json:"config_vars"`
}

// Domain is one of the app's hostnames.
type Domain struct {
	Hostname string `json:"hostname"`
	Kind     string `json:"kind"`
	CNAME    string `json:"cname,omitempty"`
}

func appURL(app string) string { return "/apps/" + url.PathEscape(app) }

// AppInfo reads the app's region, stack, space and generation (read as the CLI reads it:
// heroku-go's App lacks the generation).
func (c *Client) AppInfo(ctx context.Context, app string) (AppInfo, error) {
	var a struct {
		Name   string `json:"name"`
		Region struct {
			Name string `json:"name"`
		} `json:"region"`
		Stack struct {
			Name string `json:"name"`
		} `json:"stack"`
		Space *struct {
			Name string `json:"name"`
		} `json:"space"`
		Generation json.RawMessage `json:"generation"`
	}
	if err := platformErr(c.platform.Get(ctx, &a, appURL(app), nil, nil)); err != nil {
		return AppInfo{}, fmt.Errorf("heroku: app %s: %w", app, err)
	}
	info := AppInfo{Name: a.Name, Region: a.Region.Name, Stack: a.Stack.Name, Generation: generationOf(a.Generation)}
	if a.Space != nil {
		info.Space = a.Space.Name
	}
	return info, nil
}

func releaseOf(r hk.Release) Release {
	out := Release{ID: r.ID, Version: r.Version, Current: r.Current, Status: r.Status, Description: r.Description}
	if r.Slug != nil {
		out.SlugID = r.Slug.ID
	}
	return out
}

// Slug reads a slug, with its download URL.
func (c *Client) Slug(ctx context.Context, app, id string) (Slug, error) {
	s, err := c.platform.SlugInfo(ctx, url.PathEscape(app), url.PathEscape(id))
	if err != nil {
		return Slug{}, fmt.Errorf("heroku: slug %s of app=%s: %w", id, app, platformErr(err))
	}
	return slugOf(s), nil
}

func slugOf(s *hk.Slug) Slug {
	out := Slug{ID: s.ID, BlobURL: s.Blob.URL, ProcessTypes: s.ProcessTypes, Stack: s.Stack.Name}
	if s.Checksum != nil {
		out.Checksum = *s.Checksum
	}
	if s.Size != nil {
		out.Size = int64(*s.Size)
	}
	if s.Commit != nil {
		out.Commit = *s.Commit
	}
	return out
}

// ConfigVars reads the app's config vars. Their values are secrets: never log them.
func (c *Client) ConfigVars(ctx context.Context, app string) (map[string]Secret, error) {
	var vars map[string]*string // values may be null
	if err := platformErr(c.platform.Get(ctx, &vars, appURL(app)+"/config-vars", nil, nil)); err != nil {
		return nil, fmt.Errorf("heroku: config vars of app=%s: %w", app, err)
	}
	out := make(map[string]Secret, len(vars))
	for k, v := range vars {
		if v != nil {
			out[k] = Secret(*v)
		}
	}
	return out, nil
}

// Formation reads the app's process types' quantities and sizes.
func (c *Client) Formation(ctx context.Context, app string) ([]Process, error) {
	list, err := listAll[hk.Formation](ctx, c.lists, appURL(app)+"/formation", idPages)
	if err != nil {
		return nil, fmt.Errorf("heroku: formation of app=%s: %w", app, err)
	}
	out := make([]Process, len(list))
	for i, f := range list {
		out[i] = Process{Type: f.Type, Quantity: f.Quantity, Size: f.Size, Command: f.Command}
	}
	return out, nil
}

// Buildpacks lists the app's buildpacks, in order. An installation has no id to range by: the
// list is read in the server's order, whatever the pages, and put in the order of its ordinals.
func (c *Client) Buildpacks(ctx context.Context, app string) ([]string, error) {
	list, err := listAll[hk.BuildpackInstallation](ctx, c.lists, appURL(app)+"/buildpack-installations", "")
	if err != nil {
		return nil, fmt.Errorf("heroku: buildpacks of app=%s: %w", app, err)
	}
	slices.SortStableFunc(list, func(a, b hk.BuildpackInstallation) int { return cmp.Compare(a.Ordinal, b.Ordinal) })
	out := make([]string, len(list))
	for i, b := range list {
		out[i] = b.Buildpack.URL
	}
	return out, nil
}

// AddonUses lists the add-ons attached to the app and which config vars each sets, from the
// app's attachments (with Accept-Inclusion: addon:plan,config_vars).
func (c *Client) AddonUses(ctx context.Context, app string) ([]AddonUse, error) {
	atts, err := listAll[attachment](ctx, c.sdkLists, appURL(app)+"/addon-attachments", idPages)
	if err != nil {
		return nil, fmt.Errorf("heroku: add-on attachments of app=%s: %w", app, err)
	}
	var out []AddonUse
	index := map[string]int{}
	for _, a := range atts {
		i, ok := index[a.Addon.ID]
		if !ok {
			service, _, _ := strings.Cut(a.Addon.Plan.Name, ":")
			out = append(out, AddonUse{Name: a.Addon.Name, Service: service, Plan: a.Addon.Plan.Name})
			i = len(out) - 1
			index[a.Addon.ID] = i
		}
		out[i].Attachments = append(out[i].Attachments, a.Name)
		out[i].ConfigVars = append(out[i].ConfigVars, a.vars()...)
	}
	return out, nil
}

// Domains lists the app's hostnames.
func (c *Client) Domains(ctx context.Context, app string) ([]Domain, error) {
	list, err := listAll[hk.Domain](ctx, c.lists, appURL(app)+"/domains", idPages)
	if err != nil {
		return nil, fmt.Errorf("heroku: domains of app=%s: %w", app, err)
	}
	out := make([]Domain, len(list))
	for i, d := range list {
		out[i] = Domain{Hostname: d.Hostname, Kind: d.Kind}
		if d.CName != nil {
			out[i].CNAME = *d.CName
		}
	}
	return out, nil
}

// CreateApp creates an app in region on stack (POST /apps). Not retried: it is not idempotent.
func (c *Client) CreateApp(ctx context.Context, name, region, stack string) error {
	opts := hk.AppCreateOpts{Name: &name}
	if region != "" {
		opts.Region = &region
	}
	if stack != "" {
		opts.Stack = &stack
	}
	if _, err := c.platform.AppCreate(ctx, opts); err != nil {
		return fmt.Errorf("heroku: create app %s: %w", name, platformErr(err))
	}
	return nil
}

// SetBuildpacks replaces the app's buildpacks (PUT, idempotent).
func (c *Client) SetBuildpacks(ctx context.Context, app string, urls []string) error {
	var opts hk.BuildpackInstallationUpdateOpts
	for _, u := range urls {
		opts.Updates = append(opts.Updates, struct {
			Buildpack string `json:"buildpack" url:"buildpack,key"`
		}{Buildpack: u})
	}
	if _, err := c.platform.BuildpackInstallationUpdate(idempotent(ctx), url.PathEscape(app), opts); err != nil {
		return fmt.Errorf("heroku: set buildpacks of app=%s: %w", app, platformErr(err))
	}
	return nil
}

// SetConfigVars sets config vars (PATCH, idempotent). The error never carries a value.
func (c *Client) SetConfigVars(ctx context.Context, app string, vars map[string]Secret) error {
	body := make(map[string]string, len(vars))
	for k, v := range vars {
		body[k] = v.Reveal()
	}
	var out map[string]*string
	if err := platformErr(c.platform.Patch(idempotent(ctx), &out, appURL(app)+"/config-vars", body)); err != nil {
		return fmt.Errorf("heroku: set %d config vars on app=%s: %w", len(vars), app, err)
	}
	return nil
}

// CreateSlug makes an empty slug to upload a tarball to (POST /apps/{app}/slugs): its blob URL
// takes a PUT.
func (c *Client) CreateSlug(ctx context.Context, app string, s Slug) (Slug, error) {
	opts := hk.SlugCreateOpts{ProcessTypes: s.ProcessTypes}
	if s.Checksum != "" {
		opts.Checksum = &s.Checksum
	}
	if s.Commit != "" {
		opts.Commit = &s.Commit
	}
	if s.Stack != "" {
		opts.Stack = &s.Stack
	}
	out, err := c.platform.SlugCreate(ctx, url.PathEscape(app), opts)
	if err != nil {
		return Slug{}, fmt.Errorf("heroku: create a slug on app=%s: %w", app, platformErr(err))
	}
	return slugOf(out), nil
}

// ReleaseSlug releases an uploaded slug (POST /apps/{app}/releases) and returns the version.
func (c *Client) ReleaseSlug(ctx context.Context, app, slugID, description string) (int, error) {
	r, err := c.platform.ReleaseCreate(ctx, url.PathEscape(app), hk.ReleaseCreateOpts{Slug: slugID, Description: &description})
	if err != nil {
		return 0, fmt.Errorf("heroku: release slug %s on app=%s: %w", slugID, app, platformErr(err))
	}
	return r.Version, nil
}

// Scale sets the quantity and size of process types (PATCH /apps/{app}/formation, idempotent).
func (c *Client) Scale(ctx context.Context, app string, procs []Process) error {
	var opts hk.FormationBatchUpdateOpts
	for _, p := range procs {
		q, size := p.Quantity, p.Size
		u := struct {
			Quantity *int    `json:"quantity,omitempty" url:"quantity,omitempty,key"`
			Size     *string `json:"size,omitempty" url:"size,omitempty,key"`
			Type     string  `json:"type" url:"type,key"`
		}{Quantity: &q, Type: p.Type}
		if size != "" {
			u.Size = &size
		}
		opts.Updates = append(opts.Updates, u)
	}
	if _, err := c.platform.FormationBatchUpdate(idempotent(ctx), url.PathEscape(app), opts); err != nil {
		return fmt.Errorf("heroku: scale app=%s: %w", app, platformErr(err))
	}
	return nil
}
