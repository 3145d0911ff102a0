package store

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
)

// Table names. They are also the table names the Backend persists rows under.
const (
	TableUsers       = "users"
	TableGroups      = "groups"
	TableMemberships = "memberships"
	TableTokens      = "tokens"
	TableRecords     = "records"
)

func resourceTable(name string) *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: name,
		Indexes: map[string]*memdb.IndexSchema{
			"id":         {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			"name":       {Name: "name", Unique: true, Indexer: foldedNameIndex{}},
			"externalId": {Name: "externalId", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "ExternalID"}},
		},
	}
}

func newMemDB() (*memdb.MemDB, error) {
	schema := &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		TableUsers:  resourceTable(TableUsers),
		TableGroups: resourceTable(TableGroups),
		// Memberships live in B-trees of their own (memberships.go).
		TableTokens: {
			Name: TableTokens,
			Indexes: map[string]*memdb.IndexSchema{
				"id":     {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
				"digest": {Name: "digest", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Digest"}},
			},
		},
		TableRecords: {
			Name: TableRecords,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
					&memdb.StringFieldIndex{Field: "Table"},
					&memdb.StringFieldIndex{Field: "Key"},
				}}},
			},
		},
	}}
	db, err := memdb.NewMemDB(schema)
	if err != nil {
		return nil, fmt.Errorf("store: memdb schema: %w", err)
	}
	return db, nil
}

func kindTable(k Kind) string {
	if k == KindGroup {
		return TableGroups
	}
	return TableUsers
}
