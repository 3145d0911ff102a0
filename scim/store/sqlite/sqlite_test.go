package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
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

func TestDatabaseFilesAreOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	b, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Write(context.Background(), func(w *store.WriteTxn) error {
		return w.PutToken(&store.Token{Name: "t", Digest: "d", Role: store.TokenRoleSCIM})
	}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, name := range []string{sqlite.FileName, sqlite.FileName + "-wal", sqlite.FileName + "-shm"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %o, want no group or other permissions", name, perm)
		}
	}
}
