package crashtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binErr   error
	binBuild []byte
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// ttqBinary builds the real ttq binary once per test binary; TTQ_BIN names
// a prebuilt one instead (a release build, or a deliberately broken one to
// see the tests fail).
func ttqBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TTQ_BIN"); p != "" {
		return p
	}
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "ttq-crashtest-bin")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "ttq")
		binBuild, binErr = exec.Command("go", "build", "-o", binPath, "../cmd/ttq").CombinedOutput()
	})
	if binErr != nil {
		t.Fatalf("build ttq: %v\n%s", binErr, binBuild)
	}
	return binPath
}

// envDuration reads a duration from the environment (for longer local runs).
func envDuration(t testing.TB, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: want a Go duration such as 5m", name, v)
	}
	return d
}

// envInt reads a positive integer from the environment.
func envInt(t testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// proc is one running `ttq serve`.
type proc struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	stderr bytes.Buffer
	served chan string   // the URL, once the server prints its serving line
	exited chan struct{} // closed after the process exited and was reaped
	err    error         // the exit status, set before exited is closed
}

var servingLine = regexp.MustCompile(`ttq serving on (https?://\S+) \(data `)

// spawn starts `ttq serve --data dir --listen 127.0.0.1:0 args...` and
// returns at once; waitServing waits for it to accept connections.
func spawn(t testing.TB, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(ttqBinary(t), append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, served: make(chan string, 1), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			if m := servingLine.FindStringSubmatch(line); m != nil {
				p.served <- m[1]
			}
		}
		io.Copy(io.Discard, pipe)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// waitServing waits for the serving line; it fails if the process exits first.
func (p *proc) waitServing(timeout time.Duration) error {
	select {
	case p.url = <-p.served:
		return nil
	case <-p.exited:
		return fmt.Errorf("ttq serve exited before serving (%v):\n%s", p.err, p.log())
	case <-time.After(timeout):
		return fmt.Errorf("ttq serve did not start within %s:\n%s", timeout, p.log())
	}
}

// kill sends SIGKILL and waits for the process to be reaped.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends sig and waits (bounded) for the exit.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) error {
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("ttq serve did not exit within %s of %v", timeout, sig)
	}
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// memory is a process's resident memory in KiB (Linux /proc/PID/status):
// VmRSS, and its anonymous (heap) and file-backed (Badger's memory-mapped
// logs and tables) parts.
type memory struct{ rss, anon, file int64 }

func (p *proc) memory() (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		f := strings.Fields(rest)
		if !ok || len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch name {
		case "VmRSS":
			m.rss = n
		case "RssAnon":
			m.anon = n
		case "RssFile":
			m.file = n
		}
	}
	if m.rss == 0 {
		return m, errors.New("no VmRSS in /proc status")
	}
	return m, nil
}

// client talks to one server process.
type client struct {
	url string
	hc  *http.Client
}

func newClient(url string) *client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
	}
	return &client{url: url, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// errTransport marks a request that got no HTTP answer (the server died).
var errTransport = errors.New("no answer")

func (c *client) post(path, contentType string, body []byte) (int, []byte, error) {
	resp, err := c.hc.Post(c.url+path, contentType, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errTransport, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: read answer: %v", errTransport, err)
	}
	return resp.StatusCode, b, nil
}

// goHeap reads the Go runtime's heap gauges from /metrics: live bytes,
// bytes in in-use spans, and idle bytes the runtime holds but has not
// returned to the system, in MiB.
func (c *client) goHeap() string {
	resp, err := c.hc.Get(c.url + "/metrics")
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	val := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				val[f[0]] = v
			}
		}
	}
	mib := func(k string) int { return int(val[k]) >> 20 }
	return fmt.Sprintf("%d/%d/%d", mib("go_memstats_heap_alloc_bytes"), mib("go_memstats_heap_inuse_bytes"), mib("go_memstats_heap_idle_bytes")-mib("go_memstats_heap_released_bytes"))
}

// sqlAnswer is the JSON answer of POST /v1/sql.
type sqlAnswer struct {
	Rows      json.RawMessage `json:"rows"`
	AsOf      *string         `json:"as_of"`
	Watermark *string         `json:"watermark"`
	Note      string          `json:"note"`
}

// sql runs one statement; a non-200 answer is an error carrying the body.
func (c *client) sql(q string) (sqlAnswer, error) {
	body, _ := json.Marshal(map[string]string{"sql": q})
	code, b, err := c.post("/v1/sql", "application/json", body)
	var a sqlAnswer
	if err != nil {
		return a, err
	}
	if code != http.StatusOK {
		return a, fmt.Errorf("%s: status %d: %s", q, code, b)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("%s: decode answer: %v", q, err)
	}
	return a, nil
}

// ingestAnswer is the JSON answer of POST /v1/ingest.
type ingestAnswer struct {
	Applied    int64   `json:"applied"`
	Watermarks int64   `json:"watermarks"`
	Rejected   int64   `json:"rejected"`
	Global     *string `json:"global_watermark"`
	Errors     []struct {
		Line    int    `json:"line"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (c *client) ingest(body []byte) (ingestAnswer, int, error) {
	code, b, err := c.post("/v1/ingest", "application/x-ndjson", body)
	var a ingestAnswer
	if err != nil {
		return a, 0, err
	}
	if code != http.StatusOK {
		return a, code, fmt.Errorf("ingest: status %d: %s", code, b)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, code, fmt.Errorf("ingest: decode answer: %v: %s", err, b)
	}
	return a, code, nil
}

// sourceState is one source's row of GET /v1/watermarks.
type sourceState struct {
	W       int64 // watermark, none when nothing is sealed
	Applied int64 // updates applied, counted in the same commit as the data
}

// watermarks returns G and each source's watermark and applied count.
func (c *client) watermarks() (g int64, sources map[string]sourceState, err error) {
	resp, err := c.hc.Get(c.url + "/v1/watermarks")
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errTransport, err)
	}
	defer resp.Body.Close()
	var w struct {
		Global  *string `json:"global"`
		Sources []struct {
			Source    string  `json:"source"`
			Watermark *string `json:"watermark"`
			Applied   int64   `json:"applied"`
		} `json:"sources"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		return 0, nil, fmt.Errorf("%w: watermarks: %v", errTransport, err)
	}
	if g, err = parseTime(w.Global); err != nil {
		return 0, nil, err
	}
	sources = map[string]sourceState{}
	for _, s := range w.Sources {
		wm, err := parseTime(s.Watermark)
		if err != nil {
			return 0, nil, err
		}
		sources[s.Source] = sourceState{W: wm, Applied: s.Applied}
	}
	return g, sources, nil
}

// none is "nothing sealed" on the client's side.
const none = int64(-1 << 63)

// parseTime reads an RFC 3339 time of an answer as microseconds.
func parseTime(s *string) (int64, error) {
	if s == nil {
		return none, nil
	}
	tm, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return 0, fmt.Errorf("time %q: %v", *s, err)
	}
	return tm.UnixMicro(), nil
}

// intRows decodes rows of integer (or NULL, as nullInt) cells.
func intRows(raw json.RawMessage) ([][]int64, error) {
	var rows [][]*json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&rows); err != nil {
		return nil, err
	}
	out := make([][]int64, len(rows))
	for i, r := range rows {
		out[i] = make([]int64, len(r))
		for j, c := range r {
			if c == nil {
				out[i][j] = nullInt
				continue
			}
			n, err := c.Int64()
			if err != nil {
				return nil, err
			}
			out[i][j] = n
		}
	}
	return out, nil
}

// nullInt stands for NULL in intRows.
const nullInt = int64(-1 << 63)
