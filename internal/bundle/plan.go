package bundle

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// What restore-app deploys without a flag that accepts more (the threat: a bundle planted with
// the uploader's keys, unsigned, or signed with a key that leaked too):
//
//   - buildpacks from Heroku's buildpack registry only — registry names such as heroku/ruby,
//     heroku-community/apt or urn:buildpack:heroku/ruby, published and versioned there by their
//     owners. A URL (https://…, git://…) is whatever it serves at the next build: --allow-buildpack-url.
//   - a formation within a small app's: dynos of the standard sizes (eco, basic, standard-1X,
//     standard-2X), at most FormationCapDynos in all. A bundle's formation is whatever its writer
//     put there, dynos are billed by the hour, and 50 performance-l dynos running an attacker's
//     worker cost thousands a month: more is --allow-formation, after reading the plan.
//
// Both rules hold for signed bundles too: they cost a flag, and guard against a signing key that
// leaked with the rest of the dyno's environment.

// FormationCapDynos is the most dynos, in all, restore-app scales without --allow-formation.
const FormationCapDynos = 10

// capSizes are the dyno sizes restore-app scales without --allow-formation, in lower case.
var capSizes = map[string]bool{"eco": true, "basic": true, "standard-1x": true, "standard-2x": true}

// registryRE is a buildpack of Heroku's registry: namespace/name, or its urn:buildpack: form.
var registryRE = regexp.MustCompile(`^(urn:buildpack:)?[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9._-]*$`)

// RegistryBuildpack reports whether b names a buildpack of Heroku's buildpack registry, not a URL.
func RegistryBuildpack(b string) bool { return registryRE.MatchString(b) }

// Buildpacks are the bundle's buildpacks as restore-app sets them: a registry buildpack by its
// name, which Heroku lists as urn:buildpack:heroku/ruby, is set as heroku/ruby, as the Heroku CLI
// sets it (its src/lib/buildpacks/buildpacks.ts drops the urn:buildpack: prefix of the listed
// buildpacks and PUTs them back so); a URL as it is.
func (p Plan) Buildpacks() []string {
	out := make([]string, len(p.Bundle.Record.Buildpacks))
	for i, b := range p.Bundle.Record.Buildpacks {
		out[i] = b
		if RegistryBuildpack(b) {
			out[i] = strings.TrimPrefix(b, "urn:buildpack:")
		}
	}
	return out
}

// Allow are the flags that accept what the rules refuse by default.
type Allow struct {
	BuildpackURL bool // --allow-buildpack-url
	Formation    bool // --allow-formation
}

// Refusal is a rule the plan breaks, and the flag that accepts it ("" when none can: the bundle
// cannot be deployed as it is).
type Refusal struct {
	Rule string
	Flag string
}

func (r Refusal) String() string {
	if r.Flag == "" {
		return r.Rule
	}
	return fmt.Sprintf("%s; to deploy it anyway, add %s", r.Rule, r.Flag)
}

// Plan is what restore-app is about to do with a loaded bundle, shown before anything changes.
type Plan struct {
	App       string // the app restored into
	Bundle    *Loaded
	Set       []string // config vars set from the archived values
	AddonVars []string // config vars left to the add-ons, which set them once provisioned
	Missing   []string // config vars archived without a value
}

// Plan is what deploying l into app does.
func (l *Loaded) Plan(app string) Plan {
	p := Plan{App: app, Bundle: l}
	owned := map[string]bool{}
	for _, a := range l.Record.Addons {
		for _, v := range a.ConfigVars {
			owned[v] = true
		}
	}
	for _, name := range l.Record.ConfigVarNames {
		_, ok := l.Values[name]
		switch {
		case owned[name]:
			p.AddonVars = append(p.AddonVars, name)
		case ok:
			p.Set = append(p.Set, name)
		default:
			p.Missing = append(p.Missing, name)
		}
	}
	return p
}

// Refusals lists the rules the plan breaks that a accepts not.
func (p Plan) Refusals(a Allow) []Refusal {
	rec := p.Bundle.Record
	var out []Refusal
	var urls []string
	for _, b := range rec.Buildpacks {
		if !RegistryBuildpack(b) {
			urls = append(urls, b)
		}
	}
	if len(urls) > 0 && !a.BuildpackURL {
		out = append(out, Refusal{Flag: "--allow-buildpack-url",
			Rule: fmt.Sprintf("buildpack %s is not from Heroku's buildpack registry (a URL runs whatever it serves at the next build)", strings.Join(urls, ", "))})
	}
	if over := pastCap(rec.Formation); over != "" && !a.Formation {
		out = append(out, Refusal{Flag: "--allow-formation",
			Rule: fmt.Sprintf("the formation asks for %s, past what restore-app scales unasked (standard dyno sizes, at most %d dynos in all)", over, FormationCapDynos)})
	}
	var unknown []string
	for _, f := range rec.Formation {
		if _, ok := rec.ProcessTypes[f.Type]; !ok && f.Quantity > 0 {
			unknown = append(unknown, f.Type)
		}
	}
	if len(unknown) > 0 {
		out = append(out, Refusal{Rule: fmt.Sprintf("the formation scales %s, which the slug's process types lack: Heroku would refuse it", strings.Join(unknown, ", "))})
	}
	return out
}

// pastCap says what of the formation is past the default cap; "" when nothing is.
func pastCap(f []heroku.Process) string {
	var big []string
	total := 0
	for _, p := range f {
		total += p.Quantity
		if p.Quantity > 0 && !capSizes[strings.ToLower(p.Size)] {
			big = append(big, fmt.Sprintf("%d %s %s", p.Quantity, p.Size, p.Type))
		}
	}
	var what []string
	if len(big) > 0 {
		what = append(what, strings.Join(big, ", ")+" dynos")
	}
	if total > FormationCapDynos {
		what = append(what, fmt.Sprintf("%d dynos in all", total))
	}
	return strings.Join(what, " and ")
}

// String is the plan as restore-app prints it.
func (p Plan) String() string {
	l := p.Bundle
	rec := l.Record
	var b strings.Builder
	fmt.Fprintf(&b, "\nrestore-app will deploy into %s:\n", p.App)
	fmt.Fprintf(&b, "  bundle         %s: %s v%d (release id %s), archived %s by pgoffsite %s\n", l.Key, rec.App, rec.Release, rec.ReleaseID,
		rec.ArchivedAt.UTC().Format("2006-01-02 15:04 MST"), rec.PgoffsiteVersion)
	fmt.Fprintf(&b, "  signature      %s\n", p.trust())
	fmt.Fprintf(&b, "  region, stack  %s, %s\n", rec.Region, rec.Stack)
	if s := rec.Slug; s != nil {
		fmt.Fprintf(&b, "  slug           %s (from release v%d), %d bytes, %s", s.Key, s.FromRelease, s.Bytes, s.Checksum)
		if s.Commit != "" {
			fmt.Fprintf(&b, ", commit %s", s.Commit)
		}
		b.WriteString(", checked\n")
	} else {
		b.WriteString("  slug           none: the release runs no code\n")
	}
	bps := "none"
	if len(rec.Buildpacks) > 0 {
		bps = strings.Join(p.Buildpacks(), ", ")
	}
	fmt.Fprintf(&b, "  buildpacks     %s\n", bps)
	types := make([]string, 0, len(rec.ProcessTypes))
	for t := range rec.ProcessTypes {
		types = append(types, t)
	}
	sort.Strings(types)
	b.WriteString("  process types\n")
	for _, t := range types {
		fmt.Fprintf(&b, "    %-12s %s\n", t, rec.ProcessTypes[t])
	}
	b.WriteString("  formation\n")
	total := 0
	for _, f := range rec.Formation {
		fmt.Fprintf(&b, "    %-12s %d × %s\n", f.Type, f.Quantity, f.Size)
		total += f.Quantity
	}
	fmt.Fprintf(&b, "    %d dynos in all\n", total)
	fmt.Fprintf(&b, "  config vars    %d set from %s", len(p.Set), p.values())
	if len(p.AddonVars) > 0 {
		fmt.Fprintf(&b, ", %d left to the add-ons", len(p.AddonVars))
	}
	if len(p.Missing) > 0 {
		fmt.Fprintf(&b, ", %d without a value", len(p.Missing))
	}
	b.WriteString("\n")
	return b.String()
}

func (p Plan) trust() string {
	rec := p.Bundle.Record
	switch p.Bundle.Trust {
	case Verified:
		return "verified: signed by " + rec.Signature.Key + ", the verify key"
	case SignedUnchecked:
		return "signed by " + rec.Signature.Key + ", NOT CHECKED: give restore-app the public key (BUNDLE_VERIFY_KEY or --verify-key FILE) to check it"
	}
	return "NONE: nothing shows that your bundle runs wrote this bundle (anyone with the uploader's keys can write one); sign bundles with BUNDLE_SIGNING_KEY and give restore-app BUNDLE_VERIFY_KEY"
}

func (p Plan) values() string {
	switch {
	case p.Bundle.Record.ConfigValues == nil:
		return "no archived values (ARCHIVE_RECIPIENTS was not set)"
	case p.Bundle.Unbound:
		return p.Bundle.Record.ConfigValues.Key + " (bound to no release: accepted by --allow-unbound-config)"
	}
	return p.Bundle.Record.ConfigValues.Key + fmt.Sprintf(" (bound to %s v%d)", p.Bundle.Record.App, p.Bundle.Record.Release)
}
