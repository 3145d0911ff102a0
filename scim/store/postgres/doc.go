// Package postgres is the store.Backend for several scimd processes on one
// PostgreSQL database (github.com/jackc/pgx/v5): the same journal as the
// embedded SQLite backend, in tables that scimd creates and migrates
// itself, plus a journal of commits that standbys replay and a fencing
// epoch that a deposed leader's late commit fails on.
package postgres
