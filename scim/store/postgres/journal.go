package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/scimd/scimd/scim/store"
)

// journalVersion starts every encoded journal entry.
const journalVersion = 1

// EncodeRows encodes the net row changes of one commit for the journal:
// a version byte, then per row the table, the key and the data, each as a
// uvarint length and bytes; a deletion's data length is 0 with a flag.
func EncodeRows(rows []store.Row) []byte {
	n := 1
	for _, r := range rows {
		n += len(r.Table) + len(r.Key) + len(r.Data) + 16
	}
	out := make([]byte, 0, n)
	out = append(out, journalVersion)
	for _, r := range rows {
		out = binary.AppendUvarint(out, uint64(len(r.Table)))
		out = append(out, r.Table...)
		out = binary.AppendUvarint(out, uint64(len(r.Key)))
		out = append(out, r.Key...)
		if r.Data == nil {
			out = binary.AppendUvarint(out, 0)
			continue
		}
		out = binary.AppendUvarint(out, uint64(len(r.Data))+1)
		out = append(out, r.Data...)
	}
	return out
}

// DecodeRows decodes what EncodeRows encoded.
func DecodeRows(b []byte) ([]store.Row, error) {
	if len(b) == 0 || b[0] != journalVersion {
		return nil, errors.New("postgres: journal entry of an unknown format")
	}
	b = b[1:]
	var rows []store.Row
	next := func(what string, extra uint64) ([]byte, bool, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k)+extra {
			return nil, false, fmt.Errorf("postgres: journal entry: truncated %s", what)
		}
		b = b[k:]
		if extra == 1 && n == 0 {
			return nil, false, nil
		}
		n -= extra
		v := b[:n:n]
		b = b[n:]
		return v, true, nil
	}
	for len(b) > 0 {
		table, _, err := next("table", 0)
		if err != nil {
			return nil, err
		}
		key, _, err := next("key", 0)
		if err != nil {
			return nil, err
		}
		data, present, err := next("data", 1)
		if err != nil {
			return nil, err
		}
		r := store.Row{Table: string(table), Key: string(key)}
		if present {
			r.Data = data
		}
		rows = append(rows, r)
	}
	return rows, nil
}
