//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package mvcc

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// removeEmptyLogs deletes zero-length value-log (.vlog) and memtable WAL
// (.mem) files from dir. Badger creates such a file and only afterwards
// sizes it and writes its header, so a process killed in between leaves a
// file that holds nothing, and Badger then refuses to open the directory
// ("Open existing file ... Create a new file", or "while opening memtables").
// Deleting it loses nothing. It runs under the same flock Badger takes on the
// directory, so it never touches the files of a running process; when the
// lock is held it does nothing and Badger reports the lock.
func removeEmptyLogs(dir string) error {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil
	}
	defer syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
	ents, err := d.ReadDir(-1)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".vlog") && !strings.HasSuffix(n, ".mem") || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() != 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
