package heroku

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// An app's generation (the app's "generation": the Heroku CLI's src/lib/apps/generation.ts
// and src/lib/types/fir.d.ts). heroku-go v5.5.0's App has no such field. Cedar apps release
// slugs; Fir apps release OCI images (the CLI reads a Fir app's buildpacks from its release's
// oci_image, src/lib/buildpacks/buildpacks.ts) and log differently.
const (
	GenerationCedar = "cedar"
	GenerationFir   = "fir"
)

// ErrFir matches the refusals of an app of the Fir generation (errors.Is).
var ErrFir = errors.New("the app is of Heroku's Fir generation")

// FirError refuses what a Fir-generation app cannot do; Error names the app, the generation
// and what to do instead.
type FirError struct {
	App  string
	What string // what the app lacks, and what to do
}

func (e *FirError) Error() string {
	return fmt.Sprintf("app %s is of Heroku's Fir generation (generation %q): %s", e.App, GenerationFir, e.What)
}

func (e *FirError) Is(target error) bool { return target == ErrFir }

// NeedsSlugs refuses a Fir app as a bundle target: its releases are OCI images, not slugs.
func NeedsSlugs(info AppInfo) error {
	if info.Generation != GenerationFir {
		return nil
	}
	return &FirError{App: info.Name, What: "it releases OCI images, not slugs, and pgoffsite's app bundles archive a Cedar app's slug; " +
		"leave this app out of the targets pgoffsite bundle runs for, or set BACKUP_APP_BUNDLE=false; its databases are backed up all the same"}
}

// FanoutHost refuses a Fir app as the fan-out host. Fan-out follows its children through
// Cedar's log sessions, which replay a dyno's recent lines when reopened; the Heroku CLI asks a
// Fir app's for no lines and no tail and gives up on its stream after 15 minutes
// (src/lib/run/log-displayer.ts), so a child's result line could be lost; and Fir's one-off
// dynos (Dev Center lists up to 255) were never tried with pgoffsite.
func FanoutHost(info AppInfo) error {
	if info.Generation != GenerationFir {
		return nil
	}
	return &FirError{App: info.Name, What: "fan-out runs each target in a one-off dyno and follows it through Cedar's log sessions, " +
		"which Fir apps do not offer (the Heroku CLI asks a Fir log session for no past lines); set BACKUP_FANOUT=0 to back the targets up one after another here, " +
		"or run pgoffsite on a Cedar app"}
}

// AppGeneration is the app's generation: GenerationCedar or GenerationFir.
func (c *Client) AppGeneration(ctx context.Context, app string) (string, error) {
	info, err := c.AppInfo(ctx, app)
	return info.Generation, err
}

// generationOf reads the app's generation, which Heroku writes as a name ("fir") or, in some
// answers, as {id, name} (the CLI takes both). An app without one predates Fir: Cedar.
func generationOf(raw json.RawMessage) string {
	var name string
	if json.Unmarshal(raw, &name) == nil && name != "" {
		return name
	}
	var obj struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Name != "" {
		return obj.Name
	}
	return GenerationCedar
}
