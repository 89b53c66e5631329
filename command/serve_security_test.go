package command_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	secAdmin = "ADMIN-c0ffee-7a3b91e4d2-secret"
	secRead  = "READ-d00d-5f2e8c1b0a-secret"
	secWrong = "WRONG-bad5eed-token"
)

var anyServingLine = regexp.MustCompile(`ttq serving on (https?://\S+) \(data `)

// startServeURL is startServe for any scheme: it runs the real binary with
// args and waits for its serving line.
func startServeURL(t *testing.T, env []string, args ...string) *served {
	t.Helper()
	cmd := exec.Command(cliBinary(t), append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{t: t, cmd: cmd, done: make(chan struct{})}
	urlc := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			s.mu.Lock()
			s.stderr.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := anyServingLine.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
		io.Copy(io.Discard, pipe)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	select {
	case s.url = <-urlc:
	case <-s.done:
		cmd.Wait()
		t.Fatalf("ttq serve exited before serving: %s", s.log())
	case <-time.After(20 * time.Second):
		t.Fatalf("ttq serve did not start: %s", s.log())
	}
	return s
}

func request(t *testing.T, c *http.Client, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeSecretsNeverLogged runs the real server with an admin and a read
// token, makes every kind of refused and failing request, and demands that
// the server's standard error logs the refusals but never a token: not the
// configured ones, not a wrong one a client sent. The same holds for the
// errors of a bad configuration and of the CLI client.
func TestServeSecretsNeverLogged(t *testing.T) {
	data := t.TempDir()
	srv := startServeURL(t, []string{"TTQ_AUTH_TOKEN=" + secAdmin, "TTQ_READ_TOKEN=" + secRead}, "--data", data, "--listen", "127.0.0.1:0")
	c := http.DefaultClient
	for _, r := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"POST", "/v1/sql", secAdmin, "CREATE SOURCE pricing", 200},
		{"POST", "/v1/sql", secAdmin, "CREATE TABLE prices (product_id VARCHAR PRIMARY KEY, price DOUBLE) SOURCE pricing", 200},
		{"POST", "/v1/sql", "", "SHOW TABLES", 401},
		{"POST", "/v1/sql", secWrong, "SHOW TABLES", 403},
		{"GET", "/v1/watermarks", secWrong, "", 403},
		{"POST", "/v1/ingest", secWrong, "{}\n", 403},
		{"POST", "/v1/sql", secRead, "SHOW TABLES", 200},
		{"POST", "/v1/sql", secRead, "DROP TABLE prices", 403},
		{"POST", "/v1/ingest", secRead, `{"source":"pricing","op":"watermark","ts":5}` + "\n", 403},
		{"POST", "/v1/sql", secAdmin, "SELEC nonsense '" + secAdmin + "'", 400},
		{"POST", "/v1/ingest", secAdmin, "not json\n", 200},
	} {
		if code, body := request(t, c, r.method, srv.url+r.path, r.token, r.body); code != r.want {
			t.Errorf("%s %s %q: %d %s, want %d", r.method, r.path, r.body, code, body, r.want)
		}
	}
	// The CLI client with a wrong token fails without echoing it.
	cli := runTTQ(t, "", "sql", "--server", srv.url, "--auth-token", secWrong, "-e", "SHOW TABLES")
	if cli.code == 0 || strings.Contains(cli.stderr+cli.stdout, secWrong) {
		t.Errorf("ttq sql with a wrong token: exit %d, output %q %q", cli.code, cli.stdout, cli.stderr)
	}
	if code := srv.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
	log := srv.log()
	for _, want := range []string{"request without a bearer token", "request with a token that is not valid", "read-only token refused"} {
		if !strings.Contains(log, want) {
			t.Errorf("stderr lacks %q:\n%s", want, log)
		}
	}
	for _, secret := range []string{secAdmin, secRead, secWrong} {
		if strings.Contains(log, secret) {
			t.Errorf("stderr contains the token %q:\n%s", secret, log)
		}
	}

	// Refused configurations say why, without the token.
	for _, bad := range []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"TTQ_READ_TOKEN=" + secRead}, nil, "--read-token needs --auth-token"},
		{nil, []string{"--auth-token", secAdmin, "--read-token", secAdmin}, "the same as --auth-token"},
		{nil, []string{"--auth-token", " " + secAdmin}, "spaces"},
		{[]string{"TTQ_AUTH_TOKEN=" + secAdmin}, []string{"--max-body", "lots"}, "--max-body"},
		{[]string{"TTQ_AUTH_TOKEN=" + secAdmin}, []string{"--block-cache", "0"}, "--block-cache"},
		{[]string{"TTQ_AUTH_TOKEN=" + secAdmin}, []string{"--segment-cache", "lots"}, "--segment-cache"},
	} {
		r := runTTQWithEnv(t, bad.env, append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, bad.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("serve %v %v: exit %d, stderr %q (want %q)", bad.env, bad.args, r.code, r.stderr, bad.want)
		}
		for _, secret := range []string{secAdmin, secRead} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("serve %v: output contains a token: %q", bad.args, r.stderr)
			}
		}
	}
}

func runTTQWithEnv(t *testing.T, env []string, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(cliBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("ttq %v did not exit", args)
	}
	return runResult{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
}

// selfSigned writes a CA certificate and a server certificate for
// 127.0.0.1 and localhost signed by it; it returns the file names.
func selfSigned(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ttq test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", leafDER), write("key.pem", "PRIVATE KEY", keyDER)
}

// TestServeTLS serves HTTPS with a certificate made here, and checks that a
// client trusting its CA gets through (the API and the CLI), while one that
// does not, a plain HTTP one, and one offering only TLS 1.1 do not.
func TestServeTLS(t *testing.T) {
	tmp := t.TempDir()
	caFile, certFile, keyFile := selfSigned(t, tmp)
	data := filepath.Join(tmp, "data")

	for _, bad := range [][]string{
		{"--tls-cert", certFile},
		{"--tls-key", keyFile},
		{"--tls-cert", filepath.Join(tmp, "missing.pem"), "--tls-key", keyFile},
		{"--tls-cert", keyFile, "--tls-key", certFile},
	} {
		r := runTTQWithEnv(t, nil, append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, bad...)...)
		if r.code == 0 || !strings.Contains(r.stderr, "--tls-") {
			t.Errorf("serve %v: exit %d, stderr %q", bad, r.code, r.stderr)
		}
	}

	srv := startServeURL(t, []string{"TTQ_AUTH_TOKEN=" + secAdmin}, "--data", data, "--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(srv.url, "https://") {
		t.Fatalf("serving line %q, want https://", srv.url)
	}
	caPEM, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
	if code, body := request(t, trusting, "POST", srv.url+"/v1/sql", secAdmin, "CREATE SOURCE pricing"); code != 200 {
		t.Fatalf("over TLS: %d %s", code, body)
	}
	resp, err := trusting.Get(srv.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 || resp.ProtoMajor != 2 {
		t.Errorf("connection state: TLS %v, protocol %s (want TLS >= 1.2 and HTTP/2)", resp.TLS != nil, resp.Proto)
	}

	// A client that does not trust the CA fails the handshake.
	if _, err := (&http.Client{Timeout: 10 * time.Second}).Get(srv.url + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusting client: %v, want a certificate error", err)
	}
	// Plain HTTP to the TLS port gets no API answer.
	plain := "http://" + strings.TrimPrefix(srv.url, "https://")
	if resp, err := http.Get(plain + "/healthz"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(b), "ok") {
			t.Errorf("plain HTTP to the TLS port: %d %q", resp.StatusCode, b)
		}
	}
	// TLS 1.1 is refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}, Timeout: 10 * time.Second}
	if _, err := old.Get(srv.url + "/healthz"); err == nil {
		t.Error("a TLS 1.1 client got through")
	}

	// The CLI client trusts the CA through SSL_CERT_FILE, Go's standard way.
	r := runTTQWithEnv(t, []string{"SSL_CERT_FILE=" + caFile}, "sql", "--server", srv.url, "--auth-token", secAdmin, "-e", "SHOW SOURCES")
	if r.code != 0 || !strings.Contains(r.stdout, "pricing") {
		t.Errorf("ttq sql over TLS: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runTTQWithEnv(t, []string{"SSL_CERT_FILE=" + filepath.Join(tmp, "missing.pem")}, "sql", "--server", srv.url, "--auth-token", secAdmin, "-e", "SHOW SOURCES")
	if r.code == 0 || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("ttq sql over TLS without the CA: exit %d %q", r.code, r.stderr)
	}
	if code := srv.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("SIGTERM: exit %d: %s", code, srv.log())
	}
	if strings.Contains(srv.log(), secAdmin) {
		t.Errorf("stderr contains the token:\n%s", srv.log())
	}
}

// TestServeListenPolicy: beyond loopback, ttq serve needs a token or
// --insecure-listen-any, and without TLS it warns that tokens travel in
// clear text.
func TestServeListenPolicy(t *testing.T) {
	data := t.TempDir()
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		r := runTTQWithEnv(t, nil, "serve", "--data", data, "--listen", addr)
		if r.code == 0 || !strings.Contains(r.stderr, "--auth-token") {
			t.Errorf("--listen %s without a token: exit %d, stderr %q", addr, r.code, r.stderr)
		}
	}
	// Loopback needs nothing; localhost counts as loopback.
	srv := startServeURL(t, nil, "--data", data, "--listen", "localhost:0")
	if code := srv.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("localhost: exit %d", code)
	}
	for _, c := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"--insecure-listen-any"}},
		{[]string{"TTQ_AUTH_TOKEN=" + secAdmin}, nil},
	} {
		srv := startServeURL(t, c.env, append([]string{"--data", data, "--listen", "0.0.0.0:0"}, c.args...)...)
		if code := srv.stop(syscall.SIGTERM); code != 0 {
			t.Errorf("%v: exit %d", c.args, code)
		}
		if !strings.Contains(srv.log(), "serving plain HTTP beyond loopback") {
			t.Errorf("%v %v: no warning about plain HTTP:\n%s", c.env, c.args, srv.log())
		}
		if strings.Contains(srv.log(), secAdmin) {
			t.Errorf("stderr contains the token:\n%s", srv.log())
		}
	}
}
