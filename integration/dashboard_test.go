package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestGrafanaDashboardQueriesAnswer runs every query of the Grafana
// dashboard (ops/grafana/keel.json) through a real Prometheus scraping a
// real 3-node `keel cluster local`, after making each thing the panels
// show happen (commands, errors, expirations, snapshots), and checks that
// every query is valid PromQL and returns data. This is what "the
// dashboard renders" can mean on a machine without Grafana: each panel's
// query, as Grafana would send it, answers.
//
// It needs prometheus on PATH (Debian: apt-get install prometheus); it
// skips without it unless KEEL_REQUIRE_PROMETHEUS=1.
func TestGrafanaDashboardQueriesAnswer(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("KEEL_REQUIRE_PROMETHEUS") == "1" {
			t.Fatal("prometheus is not on PATH")
		}
		t.Skip("prometheus is not on PATH (apt-get install prometheus; KEEL_REQUIRE_PROMETHEUS=1 makes this a failure)")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	type target struct {
		Expr string `json:"expr"`
	}
	var dash struct {
		Panels []struct {
			Title   string   `json:"title"`
			Targets []target `json:"targets"`
		} `json:"panels"`
	}
	b, err := os.ReadFile(filepath.Join(root, "ops", "grafana", "keel.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}

	// The cluster, with metrics on three more ports.
	ports := freePorts(t, 7, true) // 3 client ports, 3 metrics ports, Prometheus
	base, metricsBase, promPort := ports[0], ports[3], ports[6]
	dir := t.TempDir()
	cl := exec.Command(keelBin, "cluster", "local", "--nodes", "3", "--base-port", strconv.Itoa(base),
		"--metrics-base-port", strconv.Itoa(metricsBase), "--dir", filepath.Join(dir, "cluster"))
	startAndWait(t, cl, fmt.Sprintf("connect with: redis-cli -c -p %d", base))

	// Prometheus scraping them every second.
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: keel\n    static_configs:\n      - targets: [\"127.0.0.1:%d\", \"127.0.0.1:%d\", \"127.0.0.1:%d\"]\n",
		metricsBase, metricsBase+1, metricsBase+2)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	pr := exec.Command(prom, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(promPort))
	startAndWait(t, pr, "Server is ready to receive web requests")

	// Load: SETs and GETs through a cluster client, keys that expire, an
	// error reply, and a snapshot on every node.
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{fmt.Sprintf("127.0.0.1:%d", base)},
		ClusterStateReloadInterval: time.Second})
	defer cc.Close()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		k := "k" + strconv.Itoa(i%500)
		if err := cc.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		cc.Get(ctx, k)
		if i%50 == 0 {
			cc.Set(ctx, "ttl"+strconv.Itoa(i), 1, 200*time.Millisecond)
			cc.Do(ctx, "INCR", k+"x", "extra") // an error reply: wrong number of arguments
		}
		if i%2000 == 0 {
			for n := range 3 {
				nodeClient(fmt.Sprintf("127.0.0.1:%d", base+n)).Do(ctx, "SAVE")
			}
		}
	}
	time.Sleep(3 * time.Second) // the last scrapes

	vars := strings.NewReplacer(`$instance`, `.*`, `$__rate_interval`, `30s`)
	api := fmt.Sprintf("http://127.0.0.1:%d/api/v1/query", promPort)
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				continue
			}
			queries++
			q := vars.Replace(tg.Expr)
			resp, err := http.Get(api + "?query=" + url.QueryEscape(q))
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				Status string `json:"status"`
				Error  string `json:"error"`
				Data   struct {
					Result []json.RawMessage `json:"result"`
				} `json:"data"`
			}
			err = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			switch {
			case err != nil:
				t.Errorf("panel %q: %s: %v", p.Title, q, err)
			case r.Status != "success":
				t.Errorf("panel %q: %s: %s %s", p.Title, q, r.Status, r.Error)
			case len(r.Data.Result) == 0:
				t.Errorf("panel %q: %s: no data", p.Title, q)
			}
		}
	}
	if queries < 20 {
		t.Fatalf("the dashboard has %d queries; want its panels' (at least 20)", queries)
	}
	t.Logf("%d queries of %d panels answered with data", queries, len(dash.Panels))
}

// startAndWait starts cmd with its output scanned for ready, stops it
// (SIGTERM, then wait) when the test ends, and fails after a minute.
func startAndWait(t *testing.T, cmd *exec.Cmd, ready string) {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan struct{})
	done := make(chan struct{})
	var tail []string
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			if len(tail) < 200 {
				tail = append(tail, sc.Text())
			}
			if !seen && strings.Contains(sc.Text(), ready) {
				seen = true
				close(found)
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-done
	})
	select {
	case <-found:
	case <-done:
		t.Fatalf("%s exited before %q:\n%s", cmd.Path, ready, strings.Join(tail, "\n"))
	case <-time.After(time.Minute):
		t.Fatalf("%s: no %q after a minute", cmd.Path, ready)
	}
}
