// Package query parses ttq's SQL, plans it against the catalog and executes it over MVCC snapshots.
package query

import "errors"

// Sentinel errors of the SQL front end and executor. They are wrapped with
// %w and a message that says where the problem is and what to do.
var (
	// ErrSyntax is returned for text that is not valid SQL.
	ErrSyntax = errors.New("query: syntax error")
	// ErrUnsupported is returned for valid SQL that ttq does not run.
	ErrUnsupported = errors.New("query: unsupported")
	// ErrUnknownColumn is returned for a column no table in scope has.
	ErrUnknownColumn = errors.New("query: unknown column")
	// ErrUnknownTable is returned for a FROM item that is no table, view or system table.
	ErrUnknownTable = errors.New("query: unknown table")
	// ErrAmbiguous is returned for an unqualified column two tables have.
	ErrAmbiguous = errors.New("query: ambiguous column")
	// ErrType is returned for an expression whose operand types do not fit.
	ErrType = errors.New("query: type mismatch")
	// ErrGroupBy is returned for a selected column that is neither grouped nor aggregated.
	ErrGroupBy = errors.New("query: column not in GROUP BY")
	// ErrBadTime is returned for a time clause that cannot be resolved.
	ErrBadTime = errors.New("query: bad time clause")
	// ErrTooManyRows is returned when a result exceeds Options.MaxRows.
	ErrTooManyRows = errors.New("query: result too large")
	// ErrTooMuchHeld is returned when sorting, grouping, DISTINCT or a
	// hash join's build side would hold more rows than
	// Options.MaxHeldRows: the query's memory bound.
	ErrTooMuchHeld = errors.New("query: too many rows held in memory")
	// ErrInternal is returned when the executor hit a bug; the message says where.
	ErrInternal = errors.New("query: internal error")
)
