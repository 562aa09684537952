package integration

import (
	"bufio"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestClusterSplitRerun starts six keel server processes, placed (three
// groups of three replicas, --groups-max 4), loads keys through go-redis's
// ClusterClient, and splits group 2 with `keel cluster split`, killing
// the CLI with SIGKILL after it has added the group and moved a few
// batches. Run again with the same arguments, the CLI finds the move left
// half done and finishes it. Then every node's CLUSTER GROUPS shows four
// groups, group 2 with the lower half of its slots and group 4 the upper,
// nothing moving, and every key reads back.
func TestClusterSplitRerun(t *testing.T) {
	const (
		preload  = 5000
		readyMax = 30 * time.Second
	)
	c := startClusterArgs(t, 6, "everysec", "--groups", "3", "--replicas", "3", "--groups-max", "4")
	c.waitOK(readyMax)
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: c.addrs(), Protocol: 2, DisableIdentity: true,
		MaxRedirects: 8, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		ClusterStateReloadInterval: 500 * time.Millisecond,
	})
	defer cc.Close()
	for from := 0; from < preload; from += 500 {
		for try := 1; ; try++ {
			_, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := from; i < from+500; i++ {
					p.Set(ctx, "pre:"+strconv.Itoa(i), i, 0)
				}
				return nil
			})
			if err == nil {
				break
			}
			if try == 20 {
				t.Fatalf("preload: %v", err)
			}
			time.Sleep(500 * time.Millisecond) // leaderships spreading: SETs are idempotent
		}
	}

	run := func(killAfterMoved int) (lines []string, err error) {
		cmd := exec.Command(keelBin, "cluster", "split", "--node", c.nodes[0].addr(), "--group", "2", "--batch", "10")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		moved := 0
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.HasPrefix(sc.Text(), "moved ") {
				if moved++; killAfterMoved > 0 && moved == killAfterMoved {
					cmd.Process.Kill()
					break
				}
			}
		}
		return lines, cmd.Wait()
	}
	first, err := run(3)
	t.Logf("first run (killed): %v\n%s", err, strings.Join(first, "\n"))
	if err == nil || !strings.Contains(strings.Join(first, "\n"), "group 4 added") {
		t.Fatalf("the first run was not killed after adding group 4")
	}
	second, err := run(0)
	t.Logf("second run: %v\n%s", err, strings.Join(second, "\n"))
	if err != nil || !strings.HasPrefix(second[len(second)-1], "done: group 2 split, slots 8193-10922 now in group 4") {
		t.Fatalf("the rerun did not finish the split")
	}
	if strings.Contains(strings.Join(second, "\n"), "ADDGROUP") {
		t.Fatal("the rerun added another group")
	}
	for _, n := range c.nodes {
		var gs map[int]groupInfo
		for deadline := time.Now().Add(readyMax); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			gs = groupsOf(t, n.addr(), true)
			if len(gs) == 4 && gs[2].owned == "5462-8192" && gs[4].owned == "8193-10922" && gs[2].moving == "" && gs[4].moving == "" {
				break
			}
		}
		if len(gs) != 4 || gs[2].owned != "5462-8192" || gs[4].owned != "8193-10922" || gs[2].moving != "" || gs[4].moving != "" {
			t.Fatalf("node %d: CLUSTER GROUPS %+v after the split", n.id, gs)
		}
	}
	for i := 0; i < preload; i++ {
		if v, err := cc.Get(ctx, "pre:"+strconv.Itoa(i)).Int(); err != nil || v != i {
			t.Fatalf("pre:%d reads %d, %v after the split", i, v, err)
		}
	}
}
