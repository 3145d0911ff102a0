package review

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scimd/scimd/audit"
)

// EventTable writes audit events as an aligned table, one event a line:
// sequence, time, type, actor, target and a description. Call Flush after
// each batch.
type EventTable struct {
	tw     *tabwriter.Writer
	header bool
}

// NewEventTable returns an EventTable writing to w.
func NewEventTable(w io.Writer) *EventTable {
	return &EventTable{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
}

// Write adds events to the table.
func (t *EventTable) Write(events []audit.Event) {
	if !t.header {
		fmt.Fprintln(t.tw, strings.Join(EventColumns, "\t"))
		t.header = true
	}
	for _, e := range events {
		fmt.Fprintln(t.tw, strings.Join(EventRow(e), "\t"))
	}
}

// EventColumns are the columns of an audit event listing.
var EventColumns = []string{"SEQ", "TIME", "TYPE", "ACTOR", "TARGET", "WHAT"}

// EventRow is one audit event as the cells of EventColumns.
func EventRow(e audit.Event) []string {
	target := e.Target.Type
	if n := e.Target.Name; n != "" {
		target += " " + n
	} else if e.Target.ID != "" {
		target += " " + e.Target.ID
	}
	return []string{strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(time.RFC3339), e.Type,
		e.Actor.Kind + ":" + e.Actor.Name, target, Describe(e)}
}

// Flush writes the buffered lines.
func (t *EventTable) Flush() error { return t.tw.Flush() }

// WriteJSONLines writes events as JSON lines, the export format: each line
// is the event exactly as stored, so it verifies with audit.ComputeHash.
func WriteJSONLines(w io.Writer, events []audit.Event) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("write audit event %d: %w", e.Seq, err)
		}
	}
	return nil
}
