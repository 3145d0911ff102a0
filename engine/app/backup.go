package app

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/backup"
	"github.com/scimd/scimd/engine/httpjson"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
)

// registerBackup mounts POST /api/v1/backup (admin): a verified backup of
// the SQLite store, streamed to the caller.
func (a *App) registerBackup(r *mux.Router, dataDir string, database bool) {
	h := func(w http.ResponseWriter, req *http.Request) {
		if database {
			httpjson.Error(w, http.StatusNotImplemented, "this scimd keeps its state in PostgreSQL: back it up with pg_dump (docs/high-availability.md)")
			return
		}
		a.serveBackup(w, req, dataDir)
	}
	r.Handle("/api/v1/backup", a.requireScope(http.HandlerFunc(h))).Methods(http.MethodPost)
}

// serveBackup makes a backup beside the store (same file system, mode
// 0600), records a store.backup audit event, streams the file and removes
// it.
func (a *App) serveBackup(w http.ResponseWriter, r *http.Request, dataDir string) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	path := filepath.Join(dataDir, "backup-"+hex.EncodeToString(b[:])+".db")
	defer os.Remove(path)
	info, err := backup.Create(r.Context(), dataDir, path)
	if err != nil {
		a.log.ErrorContext(r.Context(), "backup failed", "error", err)
		httpjson.Error(w, http.StatusInternalServerError, "backup failed: "+err.Error())
		return
	}
	f, err := os.Open(path)
	if err != nil {
		httpjson.Error(w, http.StatusInternalServerError, "backup failed: "+err.Error())
		return
	}
	defer f.Close()
	details := map[string]any{"bytes": info.Bytes, "events": info.Events}
	if info.Head != nil {
		details["head"] = info.Head.String()
	}
	err = a.Store.Write(r.Context(), func(tx *store.WriteTxn) error {
		tx.Audit(audit.Event{Type: audit.TypeStoreBackup, Actor: server.ActorFrom(r.Context()), RequestID: server.RequestIDFrom(r.Context()),
			Target: audit.Target{Type: "Store", ID: "scimd.db"}, Details: details,
			Reasons: []string{fmt.Sprintf("backup of %d bytes streamed to the caller; audit chain verified up to event %d", info.Bytes, info.Events)}})
		return nil
	})
	if err != nil {
		httpjson.Error(w, httpjson.StatusOf(err), "record the backup: "+err.Error())
		return
	}
	name := "scimd-" + time.Now().UTC().Format("20060102T150405Z") + ".db"
	w.Header().Set("Content-Type", "application/vnd.sqlite3")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Content-Length", strconv.FormatInt(info.Bytes, 10))
	if _, err := io.Copy(w, f); err != nil {
		a.log.InfoContext(r.Context(), "backup download ended early", "error", err)
	}
}
