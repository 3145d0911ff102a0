package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/scimd/scimd/scim/store"
)

// journalVersion starts every encoded journal entry.
const journalVersion = 1

// EncodeEntry encodes one commit for the journal: a version byte; the
// audit head (sequence number, hash) and the feed head after the commit;
// then every row written, in order: table, key and data, each as a uvarint
// length and bytes, where a data length of 0 is a deletion and n+1 is n
// bytes of data.
func EncodeEntry(heads store.LoadState, rows []store.Row) []byte {
	n := 1 + 30 + len(heads.LastHash)
	for _, r := range rows {
		n += len(r.Table) + len(r.Key) + len(r.Data) + 16
	}
	out := make([]byte, 0, n)
	out = append(out, journalVersion)
	out = binary.AppendUvarint(out, heads.LastSeq)
	out = binary.AppendUvarint(out, uint64(len(heads.LastHash)))
	out = append(out, heads.LastHash...)
	out = binary.AppendUvarint(out, heads.LastFeedSeq)
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

// DecodeEntry decodes what EncodeEntry encoded.
func DecodeEntry(b []byte) (store.LoadState, []store.Row, error) {
	var heads store.LoadState
	if len(b) == 0 || b[0] != journalVersion {
		return heads, nil, errors.New("postgres: journal entry of an unknown format")
	}
	b = b[1:]
	num := func(what string) (uint64, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, fmt.Errorf("postgres: journal entry: truncated %s", what)
		}
		b = b[k:]
		return n, nil
	}
	// bytes reads a length-prefixed field; with optional, a length of 0
	// means absent and n+1 means n bytes.
	bytes := func(what string, optional bool) ([]byte, bool, error) {
		n, err := num(what)
		if err != nil {
			return nil, false, err
		}
		if optional {
			if n == 0 {
				return nil, false, nil
			}
			n--
		}
		if n > uint64(len(b)) {
			return nil, false, fmt.Errorf("postgres: journal entry: truncated %s", what)
		}
		v := b[:n:n]
		b = b[n:]
		return v, true, nil
	}
	var err error
	if heads.LastSeq, err = num("audit head"); err != nil {
		return heads, nil, err
	}
	hash, _, err := bytes("audit hash", false)
	if err != nil {
		return heads, nil, err
	}
	heads.LastHash = string(hash)
	if heads.LastFeedSeq, err = num("feed head"); err != nil {
		return heads, nil, err
	}
	var rows []store.Row
	for len(b) > 0 {
		table, _, err := bytes("table", false)
		if err != nil {
			return heads, nil, err
		}
		key, _, err := bytes("key", false)
		if err != nil {
			return heads, nil, err
		}
		data, present, err := bytes("data", true)
		if err != nil {
			return heads, nil, err
		}
		r := store.Row{Table: string(table), Key: string(key)}
		if present {
			r.Data = data
		}
		rows = append(rows, r)
	}
	return heads, rows, nil
}
