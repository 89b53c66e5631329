//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package server

import "syscall"

// DiskFreeOf returns a function reporting the bytes available to this
// process on the filesystem holding dir.
func DiskFreeOf(dir string) func() (int64, error) {
	return func() (int64, error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return 0, err
		}
		return int64(st.Bavail) * int64(st.Bsize), nil
	}
}
