package pgrestore

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// pg_restore -l lines of a dump's post-data, as PostgreSQL 15 prints them.
const postDataList = `;
; Archive created at 2026-12-06 10:00:00 UTC
;
3338; 2606 16392 CONSTRAINT public customers customers_pkey postgres
3340; 2606 16405 CONSTRAINT public events events_pkey postgres
3342; 2606 16410 CONSTRAINT public events_2025 events_2025_pkey postgres
3344; 1259 16420 INDEX public orders_note postgres
3345; 0 0 INDEX ATTACH public events_2025_pkey postgres
3346; 2620 16430 TRIGGER public orders orders_touch postgres
3350; 2606 16440 FK CONSTRAINT public orders orders_customer_id_fkey postgres
3351; 2606 16441 FK CONSTRAINT public event_refs event_refs_event_id_event_at_fkey postgres
3352; 0 16450 MATERIALIZED VIEW DATA public totals postgres
`

func TestPostDataPhases(t *testing.T) {
	var entries []entry
	for _, l := range strings.Split(postDataList, "\n") {
		if l != "" && !strings.HasPrefix(l, ";") {
			entries = append(entries, entry{line: l, desc: entryDesc(l)})
		}
	}
	var descs []string
	for _, e := range entries {
		descs = append(descs, e.desc)
	}
	if want := []string{"CONSTRAINT", "CONSTRAINT", "CONSTRAINT", "INDEX", "INDEX ATTACH", "TRIGGER", "FK CONSTRAINT", "FK CONSTRAINT", "MATERIALIZED VIEW DATA"}; !reflect.DeepEqual(descs, want) {
		t.Fatalf("kinds %q, want %q", descs, want)
	}
	phases := postDataPhases(entries, 2)
	var got []string
	for _, p := range phases {
		var sizes []string
		for _, l := range p.lists {
			sizes = append(sizes, strconv.Itoa(len(l)))
		}
		got = append(got, p.name+" "+strings.Join(sizes, "+"))
	}
	want := []string{"indexes and constraints 2+2", "index attachments 1", "foreign keys 1+1", "the rest of the post-data 2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("phases %q, want %q", got, want)
	}
	// The rest keeps the dump's order: a materialized view's data after the trigger.
	if rest := phases[3].lists[0]; !strings.Contains(rest[0], "TRIGGER") || !strings.Contains(rest[1], "MATERIALIZED VIEW DATA") {
		t.Errorf("the rest out of order: %q", rest)
	}
	if one := postDataPhases(entries, 1); len(one[0].lists) != 1 || len(one[0].lists[0]) != 4 {
		t.Errorf("one session: %+v", one[0])
	}
}
