package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

type feedLine struct {
	Op    string         `json:"op"`
	Epoch string         `json:"epoch"`
	Key   map[string]any `json:"key"`
	Row   map[string]any `json:"row"`
}

const feedSchema = `CREATE SOURCE s
CREATE TABLE items (id VARCHAR PRIMARY KEY, cat VARCHAR, price DOUBLE) SOURCE s
CREATE VIEW per_cat AS SELECT cat, COUNT(*) AS n, SUM(price) AS total FROM items GROUP BY cat`

func feedBatch(i int) string {
	var b strings.Builder
	base := 1_800_000_000_000_000 + int64(i)*1_000_000
	for j := 0; j < 5; j++ {
		id := fmt.Sprintf("I%d", (i*5+j)%9)
		if (i+j)%4 == 0 {
			fmt.Fprintf(&b, `{"source":"s","table":"items","op":"delete","ts":%d,"key":{"id":%q}}`+"\n", base+int64(j)*100_000+1, id)
			continue
		}
		fmt.Fprintf(&b, `{"source":"s","table":"items","op":"upsert","ts":%d,"data":{"id":%q,"cat":"c%d","price":%d}}`+"\n", base+int64(j)*100_000+1, id, (i+j)%3, i*10+j)
	}
	fmt.Fprintf(&b, `{"source":"s","op":"watermark","ts":%d}`+"\n", base+999_999)
	return b.String()
}

// TestViewChangeFeedReplays applies the feed to an empty map and checks the
// map equals the view AS OF every progress epoch; then follows new epochs.
func TestViewChangeFeedReplays(t *testing.T) {
	h := newHarness(t, Config{})
	for _, s := range strings.Split(feedSchema, "\n") {
		h.mustSQL(s)
	}
	for i := 0; i < 6; i++ {
		if code, body := h.ingest(feedBatch(i), ""); code != 200 {
			t.Fatalf("ingest: %d %s", code, body)
		}
	}
	resp, body := h.do(http.MethodGet, "/v1/views/per_cat/changes?from=0&to=1800000005999999", "", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	state := map[string]string{}
	progress := 0
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		var f feedLine
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		switch f.Op {
		case "upsert":
			state[fmt.Sprint(f.Key["cat"])] = fmt.Sprintf("%v,%v,%v", f.Row["cat"], f.Row["n"], f.Row["total"])
		case "delete":
			delete(state, fmt.Sprint(f.Key["cat"]))
		case "progress":
			progress++
			var rows []string
			for _, r := range state {
				rows = append(rows, r)
			}
			sort.Strings(rows)
			res := h.mustSQL("SELECT cat, n, total FROM per_cat AS OF '" + f.Epoch + "' ORDER BY cat")
			var want []string
			for _, r := range res.Rows {
				want = append(want, fmt.Sprintf("%v,%v,%v", r[0], r[1], r[2]))
			}
			if strings.Join(rows, "|") != strings.Join(want, "|") {
				t.Fatalf("at %s the feed gives %v, the view %v", f.Epoch, rows, want)
			}
		default:
			t.Fatalf("unknown op %q", f.Op)
		}
	}
	if progress < 5 {
		t.Fatalf("only %d progress records", progress)
	}

	// Follow: without to, a new epoch arrives while the client is connected.
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+"/v1/views/per_cat/changes?from=1800000005999999", nil)
	fresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer fresp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(fresp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t0 := time.Now()
	if code, body := h.ingest(feedBatch(6), ""); code != 200 {
		t.Fatalf("ingest: %d %s", code, body)
	}
	t.Logf("ingest while following took %v; G %d", time.Since(t0), h.e.Watermark())
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("feed ended while following")
			}
			if strings.Contains(l, `"op":"progress"`) {
				return
			}
		case <-deadline:
			t.Fatal("no progress record for the new epoch while following")
		}
	}
}

func TestViewChangeFeedErrors(t *testing.T) {
	h := newHarness(t, Config{})
	for _, s := range strings.Split(feedSchema, "\n") {
		h.mustSQL(s)
	}
	for path, want := range map[string]int{
		"/v1/views/nope/changes?to=0":      404,
		"/v1/views/per_cat/changes?from=x": 400,
	} {
		if resp, body := h.do(http.MethodGet, path, "", "", nil); resp.StatusCode != want {
			t.Errorf("%s: %d %s, want %d", path, resp.StatusCode, body, want)
		}
	}
}
