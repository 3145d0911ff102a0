package sqlite

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/scimd/scimd/scim/store"
)

// benchTeammate has the shape of the teammate records the engine keeps, one
// per user, so that loading them costs what it costs in scimd.
type benchTeammate struct {
	ID         string    `json:"id"`
	UserName   string    `json:"userName"`
	Role       string    `json:"role"`
	Access     bool      `json:"access"`
	Excluded   bool      `json:"excluded"`
	Reasons    []string  `json:"reasons"`
	Revision   string    `json:"revision,omitempty"`
	DecisionID string    `json:"decisionId,omitempty"`
	ChangedAt  time.Time `json:"changedAt"`
}

func decodeBenchTeammate(b []byte) (any, error) {
	var t benchTeammate
	err := json.Unmarshal(b, &t)
	return &t, err
}

// BenchmarkOpenData measures a restart: opening the SQLite database in the
// data directory named by SCIMD_BENCH_DATA and loading it into a store, as
// scimd serve does before it is ready. It reports the time of one open and
// the live heap of the loaded state, and is skipped when the variable is
// unset. With SCIMD_HEAP_PROFILE set it writes a heap profile of the loaded
// state to the file it names. Opening switches the database to WAL mode and creates the schema
// when missing: point it at a copy of a data directory.
func BenchmarkOpenData(b *testing.B) {
	dir := os.Getenv("SCIMD_BENCH_DATA")
	if dir == "" {
		b.Skip("SCIMD_BENCH_DATA (a copy of a data directory) is not set")
	}
	ctx := context.Background()
	b.ReportAllocs()
	var heapMB float64
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		be, err := Open(ctx, dir)
		if err != nil {
			b.Fatal(err)
		}
		s, err := store.Open(ctx, store.Options{Backend: be, Records: map[string]store.RecordDecoder{"teammates": decodeBenchTeammate}})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		heapMB = float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
		if path := os.Getenv("SCIMD_HEAP_PROFILE"); path != "" {
			writeHeapProfile(b, path)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(heapMB, "heap-MB")
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}
