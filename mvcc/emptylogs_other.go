//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package mvcc

// removeEmptyLogs is a no-op where ttq cannot take Badger's directory lock
// itself (see emptylogs_unix.go).
func removeEmptyLogs(dir string) error { return nil }
