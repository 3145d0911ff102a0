package sqlite_test

import (
	"context"
	"testing"

	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/sqlite"
	"github.com/scimd/scimd/scim/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunTests(t, func(t *testing.T) storetest.Opener {
		dir := t.TempDir()
		return func() store.Backend {
			b, err := sqlite.Open(context.Background(), dir)
			if err != nil {
				t.Fatalf("open sqlite: %v", err)
			}
			return b
		}
	})
}
