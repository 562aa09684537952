package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/keel-db/keel/bench/internal/harness"
)

func report(cfg config, results map[string]map[string][]trial, exp map[string][]expiryResult, started time.Time, commit string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Eviction against Redis, %s\n\n", started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "keel %s; %s; load average at the end %s.\n\n", commit, harness.MachineCPUModel(), harness.LoadAverage())
	fmt.Fprintf(&b, "`go run ./bench/evict --rounds %d --keys %d --datasize %d --maxmemory-mb %d --policies %s --samples %d --clients %d --warm-ops %d --ops %d --zipf %g --expiry-keys %d`\n\n",
		cfg.rounds, cfg.keys, cfg.data, cfg.maxmemory, strings.Join(cfg.policies, ","), cfg.samples, cfg.clients, cfg.warmOps, cfg.ops, cfg.theta, cfg.expiryKeys)
	fmt.Fprintf(&b, "GET of a Zipf(%g)-drawn key among %d, SET of a %d-byte value on a miss, %d connections one request at a time, "+
		"persistence off, maxmemory %d MB and maxmemory-samples %d on both. Medians over rounds; ratios are medians of per-round ratios. "+
		"RSS bound: RSS ≤ 1.15 × maxmemory + the empty server's RSS.\n\n", cfg.theta, cfg.keys, cfg.data, cfg.clients, cfg.maxmemory, cfg.samples)
	b.WriteString("| policy | keel hit ratio | Redis hit ratio | keel − Redis | keel ops/s | Redis ops/s | keel/Redis | keel RSS MB (bound) | Redis RSS MB (bound) |\n")
	b.WriteString("| --- | --: | --: | --: | --: | --: | --: | --: | --: |\n")
	limit := float64(cfg.maxmemory)
	for _, pol := range cfg.policies {
		k, r := results[pol]["keel"], results[pol]["redis"]
		hk, hr := harness.Median(field(k, trial.hitRatio)), harness.Median(field(r, trial.hitRatio))
		rssK, rssR := harness.Median(field(k, func(t trial) float64 { return mb(t.rss) })), harness.Median(field(r, func(t trial) float64 { return mb(t.rss) }))
		boundK := 1.15*limit + harness.Median(field(k, func(t trial) float64 { return mb(t.emptyRSS) }))
		boundR := 1.15*limit + harness.Median(field(r, func(t trial) float64 { return mb(t.emptyRSS) }))
		fmt.Fprintf(&b, "| %s | %.4f | %.4f | %+.4f | %s | %s | %s | %.1f (%.1f) | %.1f (%.1f) |\n", pol, hk, hr, hk-hr,
			harness.FmtOps(harness.Median(field(k, trial.opsPerSec))), harness.FmtOps(harness.Median(field(r, trial.opsPerSec))),
			harness.FmtRatio(harness.MedianRatio(field(k, trial.opsPerSec), field(r, trial.opsPerSec)), "×"), rssK, boundK, rssR, boundR)
	}
	if exp != nil {
		fmt.Fprintf(&b, "\n## Active expiry: %d keys with one expiry time\n\n", cfg.expiryKeys)
		fmt.Fprintf(&b, "%d connections GET keys without a TTL, one at a time, from %s before the common expiry time to %s after it. "+
			"\"left\" is how many expiring keys DBSIZE still counted at the end (expired keys not yet reclaimed).\n\n", expiryProbes, expiryLead, expiryWatch)
		b.WriteString("| system | GET p99 before, ms | GET p99 during, ms | GET max during, ms | left |\n| --- | --: | --: | --: | --: |\n")
		for _, name := range systemNames {
			es := exp[name]
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %.0f |\n", name,
				harness.FmtMillis(harness.Median(efield(es, func(e expiryResult) float64 { return e.beforeP99 }))),
				harness.FmtMillis(harness.Median(efield(es, func(e expiryResult) float64 { return e.duringP99 }))),
				harness.FmtMillis(harness.Median(efield(es, func(e expiryResult) float64 { return e.duringMax }))),
				harness.Median(efield(es, func(e expiryResult) float64 { return float64(e.left) })))
		}
	}
	return b.String()
}

func field(ts []trial, f func(trial) float64) []float64 {
	out := make([]float64, len(ts))
	for i, t := range ts {
		out[i] = f(t)
	}
	return out
}

func efield(es []expiryResult, f func(expiryResult) float64) []float64 {
	out := make([]float64, len(es))
	for i, e := range es {
		out[i] = f(e)
	}
	return out
}
