package store

import (
	"cmp"
	"slices"
	"testing"
)

func TestFillKeepsEveryItemInOrder(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 62, 63, 64, 65, 127, 128, 1000, 4097} {
		items := make([]int, n)
		for i := range items {
			items[i] = i * 3
		}
		tr := loadTree(slices.Clone(items), cmp.Compare[int])
		if got := tr.Items(); !slices.Equal(got, items) && !(n == 0 && len(got) == 0) {
			t.Fatalf("n=%d: tree holds %v", n, got)
		}
		// The tree stays usable: insert between and delete every item.
		for i := 0; i < n; i++ {
			tr.Set(i*3 + 1)
		}
		if tr.Len() != 2*n {
			t.Fatalf("n=%d: %d items after inserts, want %d", n, tr.Len(), 2*n)
		}
		for _, it := range items {
			if _, ok := tr.Delete(it); !ok {
				t.Fatalf("n=%d: %d not found", n, it)
			}
		}
		if tr.Len() != n {
			t.Fatalf("n=%d: %d items left, want %d", n, tr.Len(), n)
		}
	}
}
