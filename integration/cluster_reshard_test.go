package integration

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestClusterReshardKill starts three keel server processes with two
// replica groups each (--groups 2, appendfsync always), loads them through
// go-redis's ClusterClient, and moves a range of group 1's slots to group 2
// with `keel cluster reshard` while the writers run. During the move the
// leader of the source group is killed with kill -9 (without -short, the
// target group's leader too, later in the move) and restarted. Then:
//   - the move completes (the CLI is rerun if it died; it resumes where
//     the groups left off), and every node's CLUSTER GROUPS shows the range
//     in group 2 with nothing migrating or importing;
//   - every acknowledged write is readable: the keys loaded before the
//     move (many of them moved) and the writers' SETs and INCRs, as
//     TestClusterKillLeader checks them.
func TestClusterReshardKill(t *testing.T) {
	const (
		writers  = 6
		preload  = 20000
		slots    = "0-4095" // half of group 1's 0-8191
		readyMax = 20 * time.Second
	)
	kills := 2
	if testing.Short() {
		kills = 1
	}
	c := startClusterArgs(t, 3, "always", "--groups", "2")
	c.waitOK(readyMax)
	ctx := context.Background()
	// Leadership spreads (group g to node g) a few seconds after start,
	// and back after a failover once the preferred node is up again: a
	// transfer answers -TRYAGAIN for a moment, so the load starts, and the
	// final reads run, once it has happened.
	waitSpread := func() {
		t.Helper()
		for deadline := time.Now().Add(readyMax); ; time.Sleep(100 * time.Millisecond) {
			spread := true
			for _, n := range c.nodes {
				gs := groupsOf(t, n.addr(), true)
				spread = spread && gs[1].leader == 1 && gs[2].leader == 2
			}
			if spread {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("leadership not spread after %s", readyMax)
			}
		}
	}
	waitSpread()

	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: c.addrs(), Protocol: 2, DisableIdentity: true,
		MaxRedirects: 8, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		PoolSize: writers + 2, ClusterStateReloadInterval: 500 * time.Millisecond,
	})
	l := newLedger()
	cc.OnNewNode(func(rdb *redis.Client) { rdb.AddHook(incrCounter{l}) })

	// Keys enough in the range that the move takes many batches.
	pre := map[string]string{}
	for from := 0; from < preload; from += 1000 {
		for try := 1; ; try++ {
			_, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := from; i < from+1000; i++ {
					k := "pre:" + strconv.Itoa(i)
					pre[k] = strconv.Itoa(i)
					p.Set(ctx, k, pre[k], 0)
				}
				return nil
			})
			if err == nil {
				break
			}
			if try == 5 {
				t.Fatalf("preload: %v", err)
			}
			time.Sleep(500 * time.Millisecond) // an election: SETs are idempotent
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
		cc.Close()
	})
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.write(cc, g, stop)
		}()
	}
	time.Sleep(time.Second)

	// The first run of the CLI; its progress lines pace the kills.
	lines := make(chan string, 1024)
	runCLI := func() *exec.Cmd {
		cmd := exec.Command(keelBin, "cluster", "reshard", "--node", c.nodes[2].addr(), "--slots", slots, "--to", "2", "--batch", "20")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		return cmd
	}
	start := time.Now()
	cli := runCLI()
	exited := make(chan error, 1)
	go func() { exited <- cli.Wait() }()

	var transcript []string
	movedLines := 0
	waitMoved := func(n int) {
		for movedLines < n {
			select {
			case line := <-lines:
				transcript = append(transcript, line)
				if strings.HasPrefix(line, "moved ") {
					movedLines++
				}
			case err := <-exited:
				exited <- err
				t.Logf("reshard CLI exited (%v) before %d progress lines:\n%s", err, n, strings.Join(transcript, "\n"))
				return
			case <-time.After(60 * time.Second):
				t.Fatalf("no reshard progress in 60 s:\n%s", strings.Join(transcript, "\n"))
			}
		}
	}
	groupLeader := func(g int) *node {
		for deadline := time.Now().Add(readyMax); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			for _, n := range c.nodes {
				if !n.running() {
					continue
				}
				if id := groupsOf(t, n.addr(), false)[g].leader; id != 0 && c.nodes[id-1].running() {
					return c.nodes[id-1]
				}
			}
		}
		t.Fatalf("group %d has no running leader", g)
		return nil
	}
	for kill := 1; kill <= kills; kill++ {
		waitMoved(5 * kill)
		g := kill // kill 1: group 1 (the source); kill 2: group 2 (the target)
		victim := groupLeader(g)
		victim.kill()
		t.Logf("kill %d: kill -9 node %d, leader of group %d, after %d progress lines (%s into the move)",
			kill, victim.id, g, movedLines, time.Since(start).Round(time.Millisecond))
		time.Sleep(2 * time.Second)
		victim.start(t)
	}

	// The CLI finishes, or is rerun until it does.
	var err error
	for run := 1; ; run++ {
		select {
		case err = <-exited:
		case <-time.After(3 * time.Minute):
			t.Fatalf("reshard not finished after 3 minutes:\n%s", strings.Join(transcript, "\n"))
		}
	drain:
		for {
			select {
			case line := <-lines:
				transcript = append(transcript, line)
			case <-time.After(200 * time.Millisecond):
				break drain
			}
		}
		if err == nil {
			break
		}
		if run == 3 {
			t.Fatalf("reshard failed %d times (%v):\n%s", run, err, strings.Join(transcript, "\n"))
		}
		t.Logf("reshard CLI run %d failed (%v); rerunning", run, err)
		cli = runCLI()
		go func() { exited <- cli.Wait() }()
	}
	last := transcript[len(transcript)-1]
	if !strings.HasPrefix(last, "done: moved ") && !strings.Contains(last, "nothing to move") {
		t.Fatalf("reshard output ends %q:\n%s", last, strings.Join(transcript, "\n"))
	}
	t.Logf("reshard finished in %s: %s", time.Since(start).Round(time.Millisecond), last)

	time.Sleep(time.Second) // writes after the move, on group 2
	close(stop)
	wg.Wait()
	c.waitOK(readyMax)
	waitSpread()

	// Every node agrees on the result once it has applied the move.
	for _, n := range c.nodes {
		var gs map[int]groupInfo
		for deadline := time.Now().Add(readyMax); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			gs = groupsOf(t, n.addr(), true)
			if gs[1].owned == "4096-8191" && gs[2].owned == "0-4095 8192-16383" && gs[1].moving == "" && gs[2].moving == "" {
				break
			}
		}
		if gs[1].owned != "4096-8191" || gs[2].owned != "0-4095 8192-16383" || gs[1].moving != "" || gs[2].moving != "" {
			t.Fatalf("node %d: CLUSTER GROUPS %+v after the move", n.id, gs)
		}
	}

	// Every preloaded key reads back.
	keys := make([]string, 0, len(pre))
	for k := range pre {
		keys = append(keys, k)
	}
	for from := 0; from < len(keys); from += 1000 {
		part := keys[from:min(from+1000, len(keys))]
		cmds := make([]*redis.StringCmd, len(part))
		if _, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range part {
				cmds[i] = p.Get(ctx, k)
			}
			return nil
		}); err != nil {
			t.Fatalf("read back the preloaded keys: %v", err)
		}
		for i, k := range part {
			if got, err := cmds[i].Result(); err != nil || got != pre[k] {
				t.Fatalf("preloaded %s=%s reads %q (%v) after the move", k, pre[k], got, err)
			}
		}
	}
	l.check(t, cc)
	if msgs := l.unexpected(); len(msgs) > 0 {
		t.Errorf("%d writes failed with errors other than a failover's: %s", len(msgs), strings.Join(msgs, "; "))
	}
}

// groupInfo is one group of a CLUSTER GROUPS reply, flattened.
type groupInfo struct {
	leader int
	owned  string // ranges, space-separated
	moving string // migrating and importing entries, "" when none
}

// groupsOf reads CLUSTER GROUPS from the node at addr (fatal only when
// must is set; otherwise an unreachable node gives no groups).
func groupsOf(t *testing.T, addr string, must bool) map[int]groupInfo {
	t.Helper()
	cl := nodeClient(addr)
	defer cl.Close()
	v, err := cl.Do(context.Background(), "CLUSTER", "GROUPS").Slice()
	out := map[int]groupInfo{}
	if err != nil {
		if must {
			t.Fatalf("CLUSTER GROUPS on %s: %v", addr, err)
		}
		return out
	}
	for _, e := range v {
		kvs, _ := e.([]any)
		var id int
		var gi groupInfo
		for i := 0; i+1 < len(kvs); i += 2 {
			name, _ := kvs[i].(string)
			switch name {
			case "group":
				n, _ := kvs[i+1].(int64)
				id = int(n)
			case "leader":
				n, _ := kvs[i+1].(int64)
				gi.leader = int(n)
			case "owned", "migrating", "importing":
				items, _ := kvs[i+1].([]any)
				var parts []string
				for _, it := range items {
					parts = append(parts, fmt.Sprint(it))
				}
				if name == "owned" {
					gi.owned = strings.Join(parts, " ")
				} else if len(parts) > 0 {
					gi.moving += name + " " + strings.Join(parts, ",") + ";"
				}
			}
		}
		out[id] = gi
	}
	return out
}
