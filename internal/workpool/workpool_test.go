package workpool

import (
	"sync/atomic"
	"testing"
)

// TestChunksCoversEveryIndexOnce runs Chunks over sizes, chunk lengths
// and worker counts: every index is visited exactly once, and ranges are
// never longer than the chunk.
func TestChunksCoversEveryIndexOnce(t *testing.T) {
	for _, tc := range []struct{ n, chunk, workers int }{
		{0, 4, 4}, {1, 4, 4}, {7, 1, 1}, {7, 3, 2}, {100, 7, 8}, {1000, 64, 3}, {5, 0, 2}, {5, 10, 0},
	} {
		seen := make([]atomic.Int32, tc.n)
		Chunks(tc.n, tc.chunk, tc.workers, func(start, end int) {
			if end-start > max(tc.chunk, 1) || start >= end {
				t.Errorf("%+v: range [%d, %d)", tc, start, end)
			}
			for i := start; i < end; i++ {
				seen[i].Add(1)
			}
		})
		for i := range seen {
			if n := seen[i].Load(); n != 1 {
				t.Fatalf("%+v: index %d visited %d times", tc, i, n)
			}
		}
	}
}
