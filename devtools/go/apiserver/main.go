// Command apiserver runs an embedded etcd plus a real kube-apiserver on loopback, for tests.
//
// Everything it needs (etcd data, serving certs, service-account keys, tokens, kubeconfigs)
// lives under --data-dir. Starting it again with the same --data-dir reuses all of it,
// including the ports chosen the first time (kept in state.json), so a restart keeps the
// objects stored in etcd and the kubeconfigs written before stay valid.
//
// When /readyz answers ok it writes, in --data-dir:
//
//	admin.kubeconfig     user "admin", group system:masters
//	operator.kubeconfig  the operator's ServiceAccount identity (see --sa-namespace/--sa-name)
//	user.kubeconfig      user "tester", group system:authenticated only (no RBAC grants)
//	ready.json           {url, ca_file, admin_kubeconfig, operator_kubeconfig, user_kubeconfig, pid, ...}
//
// SIGTERM/SIGINT stops the API server, then etcd.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

type urlT = neturl.URL

func mustURL(s string) urlT {
	u, err := neturl.Parse(s)
	if err != nil {
		die("parse url %q: %v", s, err)
	}
	return *u
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type state struct {
	Port         int `json:"port"`
	EtcdPort     int `json:"etcd_port"`
	EtcdPeerPort int `json:"etcd_peer_port"`
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[harness] "+time.Now().Format("15:04:05.000")+" "+format+"\n", args...)
}

func die(format string, args ...any) {
	logf("FATAL: "+format, args...)
	os.Exit(1)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		die("pick free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) {
	if err := writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		die("write %s: %v", path, err)
	}
}

// ensurePKI creates (once) a CA, a serving certificate signed by it for 127.0.0.1/localhost,
// and the service-account RSA key pair. The serving pair is named apiserver.crt/apiserver.key
// in the cert dir, which is what kube-apiserver's --cert-dir looks for before generating one.
func ensurePKI(pki string) {
	if err := os.MkdirAll(pki, 0o700); err != nil {
		die("mkdir %s: %v", pki, err)
	}
	caFile := filepath.Join(pki, "ca.crt")
	crtFile := filepath.Join(pki, "apiserver.crt")
	keyFile := filepath.Join(pki, "apiserver.key")
	if !(exists(caFile) && exists(crtFile) && exists(keyFile)) {
		caKey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			die("ca key: %v", err)
		}
		now := time.Now().Add(-time.Hour)
		caTmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "rollup-harness-ca"},
			NotBefore:             now,
			NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
		if err != nil {
			die("ca cert: %v", err)
		}
		caCert, _ := x509.ParseCertificate(caDER)
		srvKey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			die("serving key: %v", err)
		}
		srvTmpl := &x509.Certificate{
			SerialNumber: big.NewInt(2),
			Subject:      pkix.Name{CommonName: "kube-apiserver"},
			NotBefore:    now,
			NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc.cluster.local"},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.0.0.1")},
		}
		srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
		if err != nil {
			die("serving cert: %v", err)
		}
		writePEM(keyFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(srvKey), 0o600)
		// serving cert file carries the chain (leaf then CA)
		chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
		if err := writeFileAtomic(crtFile, chain, 0o644); err != nil {
			die("write %s: %v", crtFile, err)
		}
		writePEM(caFile, "CERTIFICATE", caDER, 0o644)
		logf("generated CA and serving certificate in %s", pki)
	}
	saKey := filepath.Join(pki, "sa.key")
	saPub := filepath.Join(pki, "sa.pub")
	if !(exists(saKey) && exists(saPub)) {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			die("sa key: %v", err)
		}
		pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			die("sa pub: %v", err)
		}
		writePEM(saKey, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k), 0o600)
		writePEM(saPub, "PUBLIC KEY", pub, 0o644)
		logf("generated service-account key pair in %s", pki)
	}
}

type tokenUser struct {
	token, user, uid string
	groups           []string
}

func randToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		die("rand: %v", err)
	}
	return hex.EncodeToString(b)
}

// ensureTokens creates (once) the token auth file; tokens are reused on restart.
func ensureTokens(dir, saNS, saName string) map[string]tokenUser {
	path := filepath.Join(dir, "tokens.json")
	saved := map[string]string{}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &saved)
	}
	for _, k := range []string{"admin", "operator", "user"} {
		if saved[k] == "" {
			saved[k] = randToken()
		}
	}
	b, _ := json.MarshalIndent(saved, "", "  ")
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		die("write %s: %v", path, err)
	}
	users := map[string]tokenUser{
		"admin": {saved["admin"], "admin", "harness-admin", []string{"system:masters", "system:authenticated"}},
		"operator": {saved["operator"], "system:serviceaccount:" + saNS + ":" + saName, "harness-operator-sa",
			[]string{"system:serviceaccounts", "system:serviceaccounts:" + saNS, "system:authenticated"}},
		"user": {saved["user"], "tester", "harness-tester", []string{"system:authenticated"}},
	}
	var sb strings.Builder
	for _, k := range []string{"admin", "operator", "user"} {
		u := users[k]
		fmt.Fprintf(&sb, "%s,%s,%s,\"%s\"\n", u.token, u.user, u.uid, strings.Join(u.groups, ","))
	}
	if err := writeFileAtomic(filepath.Join(dir, "tokens.csv"), []byte(sb.String()), 0o600); err != nil {
		die("write tokens.csv: %v", err)
	}
	return users
}

func kubeconfig(url string, caPEM []byte, name, token string) []byte {
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: harness
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: %s@harness
  context:
    cluster: harness
    user: %s
current-context: %s@harness
preferences: {}
`, url, base64.StdEncoding.EncodeToString(caPEM), name, token, name, name, name))
}

func waitReady(ctx context.Context, url string, caPEM []byte, token string) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{
		Timeout:   3 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func main() {
	dataDir := flag.String("data-dir", "", "directory for etcd data, certs, keys, tokens, kubeconfigs (required)")
	port := flag.Int("port", 0, "kube-apiserver secure port on 127.0.0.1 (0 = reuse the one in state.json, else pick a free one)")
	etcdPort := flag.Int("etcd-port", 0, "etcd client port (0 = reuse/pick free)")
	etcdPeerPort := flag.Int("etcd-peer-port", 0, "etcd peer port (0 = reuse/pick free)")
	saNS := flag.String("sa-namespace", "rollup-operator-system", "namespace of the ServiceAccount the operator token impersonates")
	saName := flag.String("sa-name", "rollup-operator", "name of the ServiceAccount the operator token impersonates")
	verbosity := flag.Int("v", 0, "kube-apiserver log verbosity")
	readyTimeout := flag.Duration("ready-timeout", 120*time.Second, "give up if /readyz is not ok by then")
	var extra stringList
	flag.Var(&extra, "apiserver-arg", "extra kube-apiserver flag (repeatable), e.g. --apiserver-arg=--feature-gates=X=true")
	flag.Parse()
	if *dataDir == "" {
		die("--data-dir is required")
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		die("abs: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		die("mkdir: %v", err)
	}
	_ = os.Remove(filepath.Join(dir, "ready.json"))

	// Ports: explicit flag > state.json from a previous run > free port.
	st := state{}
	statePath := filepath.Join(dir, "state.json")
	if b, err := os.ReadFile(statePath); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	pick := func(flagVal, saved int) int {
		if flagVal != 0 {
			return flagVal
		}
		if saved != 0 {
			return saved
		}
		return freePort()
	}
	st.Port = pick(*port, st.Port)
	st.EtcdPort = pick(*etcdPort, st.EtcdPort)
	st.EtcdPeerPort = pick(*etcdPeerPort, st.EtcdPeerPort)
	sb, _ := json.MarshalIndent(st, "", "  ")
	if err := writeFileAtomic(statePath, sb, 0o644); err != nil {
		die("write state: %v", err)
	}

	pki := filepath.Join(dir, "pki")
	ensurePKI(pki)
	users := ensureTokens(dir, *saNS, *saName)
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		die("read ca: %v", err)
	}

	// --- etcd ---
	t0 := time.Now()
	cfg := embed.NewConfig()
	cfg.Name = "harness"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")}
	clientURL := mustURL(fmt.Sprintf("http://127.0.0.1:%d", st.EtcdPort))
	peerURL := mustURL(fmt.Sprintf("http://127.0.0.1:%d", st.EtcdPeerPort))
	cfg.ListenClientUrls = []urlT{clientURL}
	cfg.AdvertiseClientUrls = []urlT{clientURL}
	cfg.ListenPeerUrls = []urlT{peerURL}
	cfg.AdvertisePeerUrls = []urlT{peerURL}
	cfg.InitialCluster = cfg.Name + "=" + peerURL.String()
	cfg.QuotaBackendBytes = 2 << 30
	etcd, err := embed.StartEtcd(cfg)
	if err != nil {
		die("start etcd: %v", err)
	}
	select {
	case <-etcd.Server.ReadyNotify():
		logf("etcd ready on %s in %s", clientURL.String(), time.Since(t0).Round(time.Millisecond))
	case <-time.After(60 * time.Second):
		etcd.Close()
		die("etcd not ready after 60s")
	}
	stopEtcd := func() {
		logf("stopping etcd")
		etcd.Close()
	}

	// --- kube-apiserver ---
	url := fmt.Sprintf("https://127.0.0.1:%d", st.Port)
	args := []string{
		"--etcd-servers=" + clientURL.String(),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(st.Port),
		"--cert-dir=" + pki,
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-key-file=" + filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(pki, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--api-audiences=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=" + strconv.Itoa(*verbosity),
	}
	args = append(args, extra...)
	logf("starting kube-apiserver on %s", url)
	cmd := app.NewAPIServerCommand() // installs its own SIGTERM/SIGINT handler (graceful stop)
	cmd.SetArgs(args)

	// Our own view of the signals: a watchdog so a stuck shutdown still ends the process.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-sigs
		logf("got %v, shutting down", s)
		time.Sleep(30 * time.Second)
		logf("shutdown took more than 30s, exiting hard")
		etcd.Close()
		os.Exit(2)
	}()

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		rctx, rcancel := context.WithTimeout(ctx, *readyTimeout)
		defer rcancel()
		if err := waitReady(rctx, url, caPEM, users["admin"].token); err != nil {
			if ctx.Err() == nil {
				logf("kube-apiserver not ready: %v", err)
				p, _ := os.FindProcess(os.Getpid())
				_ = p.Signal(syscall.SIGTERM)
			}
			return
		}
		files := map[string]string{"admin": "admin.kubeconfig", "operator": "operator.kubeconfig", "user": "user.kubeconfig"}
		for k, f := range files {
			if err := writeFileAtomic(filepath.Join(dir, f), kubeconfig(url, caPEM, users[k].user, users[k].token), 0o600); err != nil {
				die("write %s: %v", f, err)
			}
		}
		ready := map[string]any{
			"url":                 url,
			"ca_file":             filepath.Join(pki, "ca.crt"),
			"admin_kubeconfig":    filepath.Join(dir, "admin.kubeconfig"),
			"operator_kubeconfig": filepath.Join(dir, "operator.kubeconfig"),
			"user_kubeconfig":     filepath.Join(dir, "user.kubeconfig"),
			"pid":                 os.Getpid(),
			"port":                st.Port,
			"etcd_url":            clientURL.String(),
			"etcd_port":           st.EtcdPort,
			"etcd_peer_port":      st.EtcdPeerPort,
			"data_dir":            dir,
			"sa_namespace":        *saNS,
			"sa_name":             *saName,
			"operator_user":       users["operator"].user,
			"started_seconds":     time.Since(t0).Seconds(),
		}
		b, _ := json.MarshalIndent(ready, "", "  ")
		if err := writeFileAtomic(filepath.Join(dir, "ready.json"), b, 0o644); err != nil {
			die("write ready.json: %v", err)
		}
		logf("READY %s in %s (etcd+apiserver); kubeconfigs in %s", url, time.Since(t0).Round(time.Millisecond), dir)
	}()

	err = cmd.Execute()
	cancel()
	_ = os.Remove(filepath.Join(dir, "ready.json"))
	stopEtcd()
	if err != nil && !errors.Is(err, context.Canceled) {
		die("kube-apiserver: %v", err)
	}
	logf("stopped")
}
