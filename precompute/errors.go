// Package precompute maintains ttq's views: it analyses a view's query,
// brings its stored rows to every epoch boundary the global watermark
// passes, and reads the changes between boundaries as a feed.
package precompute

import "errors"

// Sentinel errors of views. Messages wrapped around them say what to do.
var (
	// ErrBeforeView is returned for a read AS OF a time before the view's
	// first epoch.
	ErrBeforeView = errors.New("precompute: before the view's first epoch")
	// ErrUnsupportedView is returned for a view query whose shape ttq
	// cannot maintain; the message names the part that is unsupported.
	ErrUnsupportedView = errors.New("precompute: unsupported view")
	// ErrViewKey is returned when the view's key is not in its select list.
	ErrViewKey = errors.New("precompute: view key not selected")
	// ErrNotMaintained is returned when a view cannot be brought to the
	// epoch a read needs (its maintenance failed or is still running).
	ErrNotMaintained = errors.New("precompute: view not maintained to this epoch")
)
