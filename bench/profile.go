package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/bench/internal/harness"
)

// profileTopNodes is how many functions the report lists (pprof -top).
const profileTopNodes = 20

// inprocOpsPerSecond converts --profile seconds into the in-process
// benchmark's -benchtime count (one op is a SET plus a GET at -P 16); only
// roughly, as the rate depends on the machine and its load.
const inprocOpsPerSecond = 50000

// runProfile takes a CPU profile of keel under redis-benchmark -t set,get
// -P 16: over keel's pprof flag when cfg.pprofFlag names one, otherwise
// with the in-process Go benchmark in bench/inproc.
func runProfile(ctx context.Context, cfg config, tl harness.Tools, keel system, tmp, root string) (string, error) {
	if cfg.pprofFlag != "" {
		return runProfileHTTP(ctx, cfg, tl, keel, tmp)
	}
	profPath := filepath.Join(tmp, "keel-cpu.pprof")
	testBin := filepath.Join(tmp, "inproc.test")
	n := cfg.profileSeconds * inprocOpsPerSecond
	fmt.Printf("profile: go test -run '^$' -bench ServerUnderRedisBenchmark/off -benchtime %dx -cpuprofile %s ./bench/inproc\n", n, profPath)
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "ServerUnderRedisBenchmark/off",
		"-benchtime", fmt.Sprintf("%dx", n), "-cpuprofile", profPath, "-o", testBin, "./bench/inproc")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(tl.RedisBenchmark)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	fmt.Print(string(out))
	if err != nil {
		return "", errors.Wrapf(err, "in-process profile benchmark")
	}
	return pprofTop(cfg, testBin, profPath)
}

func pprofTop(cfg config, bin, profPath string) (string, error) {
	if cfg.profileOut != "" {
		if b, err := os.ReadFile(profPath); err == nil {
			if err := os.WriteFile(cfg.profileOut, b, 0o644); err != nil {
				return "", errors.Wrap(err, "save profile")
			}
		}
	}
	top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount="+strconv.Itoa(profileTopNodes), bin, profPath).CombinedOutput()
	if err != nil {
		return "", errors.Wrapf(err, "go tool pprof: %s", top)
	}
	return string(top), nil
}

// runProfileHTTP starts keel (persistence off) with its pprof endpoint enabled
// through pprofFlag, drives it with redis-benchmark -t set,get -P 16 in a
// loop, and takes a CPU profile of the given length over HTTP. It returns
// the `go tool pprof -top` text; the profile itself stays in tmp (binary
// files are not committed).
func runProfileHTTP(ctx context.Context, cfg config, tl harness.Tools, keel system, tmp string) (string, error) {
	port, err := harness.FreePort()
	if err != nil {
		return "", err
	}
	pprofAddr := fmt.Sprintf("127.0.0.1:%d", port)
	keel.extraArgs = append(append([]string{}, keel.extraArgs...), cfg.pprofFlag, pprofAddr)
	dir := filepath.Join(tmp, "keel-profile")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", errors.Wrap(err, "mkdir")
	}
	s, err := startServer(keel, modes["off"], dir, 0)
	if err != nil {
		return "", err
	}
	defer s.Stop()
	c, err := s.waitReady(time.Minute, -1)
	if err != nil {
		return "", err
	}
	c.Close()

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	p := benchParams{clients: cfg.clients, dataBytes: cfg.dataBytes, keyspace: cfg.keyspace, requests: 1000000, pipeline: 16}
	load := exec.CommandContext(loadCtx, tl.RedisBenchmark, append(p.args(s.Port), "-t", "set,get", "-l", "-q")...)
	if err := load.Start(); err != nil {
		return "", errors.Wrap(err, "start redis-benchmark")
	}
	defer load.Wait()
	time.Sleep(time.Second) // past connection set-up

	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, cfg.profileSeconds)
	fmt.Printf("profile: %s under redis-benchmark -t set,get -P 16\n", url)
	client := http.Client{Timeout: time.Duration(cfg.profileSeconds)*time.Second + time.Minute}
	resp, err := client.Get(url)
	if err != nil {
		return "", errors.Wrapf(err, "fetch profile (is %s the keel flag that enables pprof?)", cfg.pprofFlag)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return "", errors.Newf("fetch profile: %s: %s", resp.Status, b)
	}
	profPath := filepath.Join(tmp, "keel-cpu.pprof")
	f, err := os.Create(profPath)
	if err != nil {
		return "", errors.Wrap(err, "create profile file")
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return "", errors.Wrap(err, "read profile")
	}
	f.Close()
	stopLoad()
	return pprofTop(cfg, keel.bin, profPath)
}
