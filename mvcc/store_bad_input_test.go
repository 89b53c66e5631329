package mvcc

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOpenAfterCrashLeftEmptyLogFiles: Badger creates a value-log or
// memtable file before it sizes it and writes its header; a kill -9 in
// between (crashtest hits it) leaves a zero-length file that made Badger
// refuse to open the store. Open removes such files and keeps the data.
func TestOpenAfterCrashLeftEmptyLogFiles(t *testing.T) {
	for _, name := range []string{"000099.vlog", "00099.mem"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := Open(dir, Options{})
			must(t, err)
			must(t, st.CommitMeta(MetaWrite{Puts: map[string][]byte{"state": []byte("kept")}}, 0))
			must(t, st.Close())
			must(t, os.WriteFile(filepath.Join(dir, name), nil, 0o644))
			st, err = Open(dir, Options{})
			if err != nil {
				t.Fatalf("open with an empty %s: %v", name, err)
			}
			defer st.Close()
			v, ok, err := st.Meta("state")
			if err != nil || !ok || string(v) != "kept" {
				t.Fatalf("state after reopen: %q %v %v", v, ok, err)
			}
		})
	}
}

// TestOpenLeavesEmptyLogsOfARunningStore: while a store is open, a second
// Open fails on the lock and removes nothing.
func TestOpenLeavesEmptyLogsOfARunningStore(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	must(t, err)
	defer st.Close()
	empty := filepath.Join(dir, "000077.vlog")
	must(t, os.WriteFile(empty, nil, 0o644))
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("second open of a locked store succeeded")
	}
	if _, err := os.Stat(empty); err != nil {
		t.Fatalf("the empty file of a running store was touched: %v", err)
	}
}
