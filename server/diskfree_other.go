//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package server

// DiskFreeOf returns nil where ttq cannot read free space: no check.
func DiskFreeOf(dir string) func() (int64, error) { return nil }
