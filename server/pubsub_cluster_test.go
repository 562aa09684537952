package server

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// receiveEventually publishes with publish until every subscriber of
// subs has received a message (the bus's connections are dialled on
// first use), then drains what the retries sent, and returns each one's
// first message.
func receiveEventually(t *testing.T, publish func(), subs ...*redis.PubSub) []*redis.Message {
	t.Helper()
	got := make([]*redis.Message, len(subs))
	missing := len(subs)
	for deadline := time.Now().Add(15 * time.Second); missing > 0; {
		if time.Now().After(deadline) {
			t.Fatal("no message crossed the bus within 15s")
		}
		publish()
		time.Sleep(100 * time.Millisecond)
		for i, sub := range subs {
			for more := true; more; {
				select {
				case m := <-sub.Channel():
					if got[i] == nil {
						got[i] = m
						missing--
					}
				default:
					more = false
				}
			}
		}
	}
	time.Sleep(300 * time.Millisecond)
	for _, sub := range subs {
		for more := true; more; {
			select {
			case <-sub.Channel():
			default:
				more = false
			}
		}
	}
	return got
}

// TestClusterPubSub: on three real servers hosting three groups, a
// PUBLISH on one node reaches channel and pattern subscribers on the
// others (RESP2 and RESP3), counting only its own node's receivers; an
// SPUBLISH reaches the shard channel's subscribers on another node that
// hosts its slot; PUBSUB SHARDCHANNELS/SHARDNUMSUB answer for the node
// asked; go-redis's ClusterClient subscribes and publishes by slot; and
// the INFO counters show the traffic.
func TestClusterPubSub(t *testing.T) {
	tc := newTestClusterGroups(t, 3, 3)
	tc.waitGroupLeaders(false)
	clients := make([]*redis.Client, 3)
	for i := range clients {
		clients[i] = (&testServer{addr: tc.srvs[i].addr}).client(t, &redis.Options{Protocol: 2 + i%2})
	}

	chanSub := clients[1].Subscribe(ctx(), "news")
	defer chanSub.Close()
	patSub := clients[2].PSubscribe(ctx(), "n*")
	defer patSub.Close()
	for _, ps := range []*redis.PubSub{chanSub, patSub} {
		if _, err := ps.Receive(ctx()); err != nil {
			t.Fatal(err)
		}
	}
	receiveEventually(t, func() { clients[0].Publish(ctx(), "news", "warm-up") }, chanSub, patSub)
	// Now every link is up: each message arrives exactly once, in order.
	for i, msg := range []string{"one", "two", "three"} {
		n, err := clients[0].Publish(ctx(), "news", msg).Result()
		if err != nil || n != 0 {
			t.Fatalf("PUBLISH %d on node 1: %d, %v; want 0 (its own receivers only)", i, n, err)
		}
	}
	for _, sub := range []*redis.PubSub{chanSub, patSub} {
		for _, want := range []string{"one", "two", "three"} {
			m := receive(t, sub)
			if m.Channel != "news" || m.Payload != want || sub == patSub && m.Pattern != "n*" {
				t.Fatalf("got %+v, want %q on news", m, want)
			}
		}
	}

	// Sharded: subscribe on node 3, publish on node 1.
	shardSub := clients[2].SSubscribe(ctx(), "{s}chan")
	defer shardSub.Close()
	if _, err := shardSub.Receive(ctx()); err != nil {
		t.Fatal(err)
	}
	m := receiveEventually(t, func() { clients[0].SPublish(ctx(), "{s}chan", "sharded") }, shardSub)[0]
	if m.Channel != "{s}chan" || m.Payload != "sharded" {
		t.Fatalf("smessage %+v", m)
	}
	if got, _ := clients[2].PubSubShardChannels(ctx(), "*").Result(); len(got) != 1 || got[0] != "{s}chan" {
		t.Fatalf("PUBSUB SHARDCHANNELS on node 3: %q", got)
	}
	if got, _ := clients[2].PubSubShardNumSub(ctx(), "{s}chan", "other").Result(); got["{s}chan"] != 1 || got["other"] != 0 {
		t.Fatalf("PUBSUB SHARDNUMSUB on node 3: %v", got)
	}
	if got, _ := clients[0].PubSubShardNumSub(ctx(), "{s}chan").Result(); got["{s}chan"] != 0 {
		t.Fatalf("PUBSUB SHARDNUMSUB on node 1 (a node-local count, as in Redis): %v", got)
	}
	if err := clients[0].Do(ctx(), "SSUBSCRIBE", "a", "b").Err(); err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
		t.Fatalf("SSUBSCRIBE across slots: %v", err)
	}

	// go-redis's ClusterClient picks the slot's node for both.
	cc := tc.clusterClient()
	ccSub := cc.SSubscribe(ctx(), "orders")
	defer ccSub.Close()
	if _, err := ccSub.Receive(ctx()); err != nil {
		t.Fatal(err)
	}
	m = receiveEventually(t, func() { cc.SPublish(ctx(), "orders", "placed") }, ccSub)[0]
	if m.Channel != "orders" || m.Payload != "placed" {
		t.Fatalf("ClusterClient smessage %+v", m)
	}

	// Keyspace notifications stay node-local: each node's subscribers
	// hear its own replicas' events, once, and nothing is forwarded (a
	// forwarded copy would arrive twice).
	for _, c := range clients {
		if err := c.ConfigSet(ctx(), "notify-keyspace-events", "E$").Err(); err != nil {
			t.Fatal(err)
		}
	}
	evSub := clients[1].Subscribe(ctx(), "__keyevent@0__:set")
	defer evSub.Close()
	if _, err := evSub.Receive(ctx()); err != nil {
		t.Fatal(err)
	}
	before := clients[1].Info(ctx(), "stats").Val()
	if err := cc.Set(ctx(), "{s}evkey", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, evSub); m.Channel != "__keyevent@0__:set" || m.Payload != "{s}evkey" {
		t.Fatalf("keyspace event %+v", m)
	}
	select {
	case m := <-evSub.Channel():
		t.Fatalf("a second event for one SET: %+v", m)
	case <-time.After(500 * time.Millisecond):
	}
	if after := clients[1].Info(ctx(), "stats").Val(); statLine(before, "cluster_pubsub_received") != statLine(after, "cluster_pubsub_received") {
		t.Fatalf("a keyspace event crossed the bus: %s then %s", statLine(before, "cluster_pubsub_received"), statLine(after, "cluster_pubsub_received"))
	}

	info, err := clients[1].Info(ctx(), "stats").Result()
	if err != nil || !strings.Contains(info, "cluster_pubsub_received:") || strings.Contains(info, "cluster_pubsub_received:0\r") {
		t.Fatalf("INFO stats on node 2 shows no forwarded publish: %v\n%s", err, info)
	}
}

// TestShardedPubSubLikeRedis compares SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH
// and PUBSUB SHARDCHANNELS/SHARDNUMSUB on a one-node keel cluster with a
// one-node Redis Cluster holding every slot, in RESP2 and RESP3:
// confirmations, counts, -CROSSSLOT, subscriber-mode refusals, arity
// errors and the delivered smessage.
func TestShardedPubSubLikeRedis(t *testing.T) {
	redisAddr, version := startRedis(t, "--cluster-enabled", "yes")
	if versionBelow(version, 7, 0) {
		t.Skipf("redis %s has no sharded pub/sub", version)
	}
	admin := (&testServer{addr: redisAddr}).raw(t)
	if got := admin.do("CLUSTER", "ADDSLOTSRANGE", "0", "16383"); got != "+OK" {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %s", got)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(admin.do("CLUSTER", "INFO"), "cluster_state:ok"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("redis cluster never became ok")
		}
	}
	tc := newTestCluster(t, 1)
	tc.leader()
	keelAddr := tc.srvs[0].addr

	type side struct{ keel, redis *rawConn }
	conns := map[string]*side{}
	conn := func(name string) *side {
		if conns[name] == nil {
			conns[name] = &side{(&testServer{addr: keelAddr}).raw(t), (&testServer{addr: redisAddr}).raw(t)}
		}
		return conns[name]
	}
	// step sends args on connection name and compares the replies (one
	// per channel for the (un)subscribe commands, replies more).
	step := func(name string, replies int, args ...string) {
		t.Helper()
		c := conn(name)
		k := c.keel.do(args...)
		r := c.redis.do(args...)
		if strings.EqualFold(args[0], "pubsub") && strings.EqualFold(args[1], "shardchannels") {
			k, r = sortedItems(k), sortedItems(r) // Redis lists them in its hash table's order
		}
		if k != r {
			t.Errorf("%s %q: keel %s, redis %s", name, args, k, r)
		}
		for range replies - 1 {
			if k, r := c.keel.reply(), c.redis.reply(); k != r {
				t.Errorf("%s %q (more): keel %s, redis %s", name, args, k, r)
			}
		}
	}
	for _, proto := range []string{"2", "3"} {
		sub, pub := "sub"+proto, "pub"+proto
		if proto == "3" {
			conn(sub).keel.do("HELLO", "3")
			conn(sub).redis.do("HELLO", "3")
		}
		step(sub, 1, "SSUBSCRIBE", "a", "b")
		step(sub, 2, "SSUBSCRIBE", "a", "{a}x")
		step(sub, 1, "SSUBSCRIBE", "a") // again: counted once
		step(sub, 1, "SUNSUBSCRIBE", "a", "b")
		step(sub, 1, "PING")
		step(sub, 1, "GET", "a")
		step(pub, 1, "PUBSUB", "SHARDCHANNELS")
		step(pub, 1, "PUBSUB", "SHARDNUMSUB", "a", "{a}x", "none")
		step(pub, 1, "SPUBLISH", "a", "hello")
		if k, r := conn(sub).keel.reply(), conn(sub).redis.reply(); k != r {
			t.Errorf("delivered: keel %s, redis %s", k, r)
		}
		step(pub, 1, "SPUBLISH", "b", "nobody")
		step(pub, 1, "SPUBLISH", "a")
		step(pub, 1, "SSUBSCRIBE")
		step(sub, 1, "SUNSUBSCRIBE", "{a}x")
		step(sub, 1, "SUNSUBSCRIBE")
		step(sub, 1, "SUNSUBSCRIBE")
		step(sub, 1, "PING")
		step(pub, 1, "SPUBLISH", "a", "gone")
	}
}

// sortedItems sorts the items of a flat compact array reply ("*[a b]").
func sortedItems(reply string) string {
	inner, ok := strings.CutPrefix(reply, "*[")
	if !ok {
		return reply
	}
	items := strings.Fields(strings.TrimSuffix(inner, "]"))
	slices.Sort(items)
	return "*[" + strings.Join(items, " ") + "]"
}

// statLine is INFO's line for field ("" when absent).
func statLine(info, field string) string {
	for _, l := range strings.Split(info, "\r\n") {
		if strings.HasPrefix(l, field+":") {
			return l
		}
	}
	return ""
}
