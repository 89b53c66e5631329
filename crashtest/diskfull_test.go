package crashtest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory, or skips the
// test when the machine does not let it (it needs root).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("a full disk needs a small filesystem: mounting a tmpfs needs root")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); the full-disk test needs one", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fillBatch is n rows of about 2 KiB for batch b, with a watermark.
func fillBatch(b, n int) []byte {
	var sb strings.Builder
	pad := strings.Repeat("p", 2000)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, `{"source":"s","table":"t","op":"upsert","ts":%d,"data":{"b":%d,"i":%d,"pad":"%s"}}`+"\n", 1000+b, b, i, pad)
	}
	fmt.Fprintf(&sb, `{"source":"s","op":"watermark","ts":%d}`+"\n", 1000+b)
	return []byte(sb.String())
}

const fillRows = 500

func fillSchema(t *testing.T, c *client) {
	t.Helper()
	for _, q := range []string{"CREATE SOURCE s", "CREATE TABLE t (b BIGINT, i BIGINT, pad VARCHAR, PRIMARY KEY (b, i)) SOURCE s"} {
		if _, err := c.sql(q); err != nil {
			t.Fatal(err)
		}
	}
}

// batchCounts is batch -> rows, read AS OF G.
func batchCounts(t *testing.T, c *client) map[int64]int64 {
	t.Helper()
	res, err := c.sql("SELECT b, COUNT(*) FROM t GROUP BY b")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := intRows(res.Rows)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]int64{}
	for _, r := range rows {
		out[r[0]] = r[1]
	}
	return out
}

// TestDiskFull fills a small tmpfs through the real server. With the free
// space check (--min-free-disk) ingest and DDL are refused with 507 before
// the disk is full, and reads keep working. Without it, Badger writes its
// memory-mapped logs into a full disk and the kernel kills the process with
// SIGBUS; once there is space again the store opens with every
// acknowledged batch and no half batch.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	t.Run("guarded", func(t *testing.T) {
		mnt := mountTmpfs(t, "64m")
		p := spawn(t, filepath.Join(mnt, "data"), nil, "--min-free-disk", "40MiB")
		if err := p.waitServing(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		c := newClient(p.url)
		fillSchema(t, c)
		acked, refused := 0, ""
		for b := 0; b < 40 && refused == ""; b++ {
			ans, code, err := c.ingest(fillBatch(b, fillRows))
			switch {
			case err == nil && ans.Applied == fillRows:
				acked++
			case code == http.StatusInsufficientStorage:
				refused = err.Error()
			default:
				t.Fatalf("batch %d: %d %v", b, code, err)
			}
		}
		if !strings.Contains(refused, `"disk_full"`) || !strings.Contains(refused, "reads keep working") {
			t.Fatalf("after %d batches: refusal %q, want 507 disk_full", acked, refused)
		}
		t.Logf("%d batches of %d rows acknowledged, then: %s", acked, fillRows, refused)
		if _, err := c.sql("CREATE SOURCE s2"); err == nil || !strings.Contains(err.Error(), "507") {
			t.Errorf("DDL on a full disk: %v, want 507", err)
		}
		counts := batchCounts(t, c)
		for b := 0; b < acked; b++ {
			if counts[int64(b)] != fillRows {
				t.Errorf("batch %d: %d rows, want %d", b, counts[int64(b)], fillRows)
			}
		}
		if len(counts) != acked {
			t.Errorf("%d batches stored, %d acknowledged", len(counts), acked)
		}
		for _, q := range []string{"SHOW TABLES", "SELECT * FROM ttq_watermarks", "SELECT COUNT(*) FROM t AS OF 1000"} {
			if _, err := c.sql(q); err != nil {
				t.Errorf("read on a full disk: %v", err)
			}
		}
		if err := p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
			t.Errorf("SIGTERM on a full disk: %v\n%s", err, p.log())
		}
	})

	t.Run("unguarded", func(t *testing.T) {
		mnt := mountTmpfs(t, "24m")
		dir := filepath.Join(mnt, "data")
		p := spawn(t, dir, nil, "--min-free-disk", "0")
		if err := p.waitServing(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		c := newClient(p.url)
		fillSchema(t, c)
		acked, inFlight := 0, -1
		for b := 0; b < 40; b++ {
			ans, code, err := c.ingest(fillBatch(b, fillRows))
			if err == nil && ans.Applied == fillRows {
				acked++
				continue
			}
			inFlight = b
			t.Logf("batch %d: %d %v", b, code, err)
			break
		}
		select {
		case <-p.exited:
			t.Logf("after %d acknowledged batches the server died: %v (%s)", acked, p.err, firstLine(p.log(), "signal"))
		case <-time.After(2 * time.Second):
			t.Logf("after %d acknowledged batches the server is still up", acked)
			p.kill()
		}
		// Make room, restart: every acknowledged batch, no half batch.
		if out, err := exec.Command("mount", "-o", "remount,size=256m", mnt).CombinedOutput(); err != nil {
			t.Fatalf("remount: %v %s", err, out)
		}
		p = spawn(t, dir, nil)
		if err := p.waitServing(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		c = newClient(p.url)
		counts := batchCounts(t, c)
		for b := 0; b < acked; b++ {
			if counts[int64(b)] != fillRows {
				t.Errorf("acknowledged batch %d: %d rows after the crash, want %d", b, counts[int64(b)], fillRows)
			}
		}
		if n := counts[int64(inFlight)]; inFlight >= 0 && n != 0 && n != fillRows {
			t.Errorf("batch %d, in flight when the disk filled, is half-applied: %d rows", inFlight, n)
		}
		for b := range counts {
			if b >= int64(acked) && b != int64(inFlight) {
				t.Errorf("batch %d was never sent but has rows", b)
			}
		}
		p.stop(syscall.SIGTERM, 30*time.Second)
	})
}

func firstLine(s, containing string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, containing) {
			return l
		}
	}
	return "no line with " + containing
}
