package server

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-db/keel/node"
	"github.com/redis/go-redis/v9"
)

// receive waits (bounded) for the next pub/sub message.
func receive(t *testing.T, ps *redis.PubSub) *redis.Message {
	t.Helper()
	select {
	case m := <-ps.Channel():
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return nil
	}
}

func TestPubSubGoRedis(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run("resp"+string(rune('0'+proto)), func(t *testing.T) {
			ts := startServer(t, Config{})
			sub := ts.client(t, &redis.Options{Protocol: proto})
			pub := ts.client(t, nil)
			ps := sub.Subscribe(ctx(), "news")
			defer ps.Close()
			if _, err := ps.Receive(ctx()); err != nil { // the subscription confirmation
				t.Fatal(err)
			}
			if err := ps.PSubscribe(ctx(), "n*"); err != nil {
				t.Fatal(err)
			}
			// Wait until both subscriptions are registered.
			for i := 0; ; i++ {
				n, _ := pub.PubSubNumPat(ctx()).Result()
				if n == 1 {
					break
				}
				if i > 1000 {
					t.Fatal("pattern subscription never registered")
				}
				time.Sleep(time.Millisecond)
			}
			if n, err := pub.Publish(ctx(), "news", "hello").Result(); err != nil || n != 2 {
				t.Fatalf("PUBLISH receivers = %d (%v), want 2", n, err)
			}
			got := map[string]bool{}
			for i := 0; i < 2; i++ {
				m := receive(t, ps)
				got[m.Channel+"|"+m.Pattern+"|"+m.Payload] = true
			}
			if !got["news||hello"] || !got["news|n*|hello"] {
				t.Fatalf("messages: %v", got)
			}
			if n, _ := pub.Publish(ctx(), "other", "x").Result(); n != 0 {
				t.Fatalf("PUBLISH to nobody = %d", n)
			}
			chans, _ := pub.PubSubChannels(ctx(), "*").Result()
			if len(chans) != 1 || chans[0] != "news" {
				t.Fatalf("PUBSUB CHANNELS = %v", chans)
			}
			nums, _ := pub.PubSubNumSub(ctx(), "news", "other").Result()
			if nums["news"] != 1 || nums["other"] != 0 {
				t.Fatalf("PUBSUB NUMSUB = %v", nums)
			}
		})
	}
}

func TestSubscriberModeRESP2(t *testing.T) {
	ts := startServer(t, Config{})
	rc := ts.raw(t)
	steps := [][2]string{
		{"SUBSCRIBE a b", "*[$subscribe $a :1]"},
		{"", "*[$subscribe $b :2]"},
		{"GET x", "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"},
		{"PING", "*[$pong $]"},
		{"PSUBSCRIBE p*", "*[$psubscribe $p* :3]"},
		{"UNSUBSCRIBE", "*[$unsubscribe $a :2]"},
		{"", "*[$unsubscribe $b :1]"},
		{"PUNSUBSCRIBE", "*[$punsubscribe $p* :0]"},
		{"PING", "+PONG"},
		{"UNSUBSCRIBE", "*[$unsubscribe $nil :0]"},
		{"SUBSCRIBE c", "*[$subscribe $c :1]"},
		{"RESET", "+RESET"},
		{"GET x", "$nil"},
	}
	for _, s := range steps {
		var got string
		if s[0] == "" {
			got = rc.reply()
		} else {
			got = rc.do(strings.Fields(s[0])...)
		}
		if got != s[1] {
			t.Fatalf("%q: got %q, want %q", s[0], got, s[1])
		}
	}
}

func TestRESP3PushAndCommandsWhileSubscribed(t *testing.T) {
	ts := startServer(t, Config{})
	rc := ts.raw(t)
	if got := rc.do("HELLO", "3"); !strings.HasPrefix(got, "%[") {
		t.Fatal(got)
	}
	if got := rc.do("SUBSCRIBE", "ch"); got != ">[$subscribe $ch :1]" {
		t.Fatal(got)
	}
	// RESP3 allows any command while subscribed.
	if got := rc.do("SET", "k", "v"); got != "+OK" {
		t.Fatal(got)
	}
	if got := ts.raw(t).do("PUBLISH", "ch", "m"); got != ":1" {
		t.Fatal(got)
	}
	if got := rc.reply(); got != ">[$message $ch $m]" {
		t.Fatal(got)
	}
}

// waitMessage reads pub/sub messages until want arrives (bounded count).
func waitMessage(t *testing.T, ps *redis.PubSub, want string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		m := receive(t, ps)
		if m.Channel+" "+m.Payload == want {
			return
		}
	}
	t.Fatalf("no %q among 100 messages", want)
}

func TestKeyspaceNotifications(t *testing.T) {
	ts := startServer(t, Config{}) // off; the RESP story covers the server flag
	rdb := ts.client(t, nil)
	if err := rdb.ConfigSet(ctx(), "notify-keyspace-events", "KEA").Err(); err != nil {
		t.Fatal(err)
	}
	if v, _ := rdb.ConfigGet(ctx(), "notify-keyspace-events").Result(); v["notify-keyspace-events"] != "AKE" {
		t.Fatalf("CONFIG GET = %v", v)
	}
	sub := ts.client(t, nil)
	ps := sub.PSubscribe(ctx(), "__key*__:*")
	defer ps.Close()
	if _, err := ps.Receive(ctx()); err != nil {
		t.Fatal(err)
	}
	rdb.Set(ctx(), "a", "1", 0)
	waitMessage(t, ps, "__keyspace@0__:a set")
	waitMessage(t, ps, "__keyevent@0__:set a")
	rdb.IncrBy(ctx(), "a", 2)
	waitMessage(t, ps, "__keyevent@0__:incrby a")
	rdb.Rename(ctx(), "a", "b")
	waitMessage(t, ps, "__keyevent@0__:rename_from a")
	waitMessage(t, ps, "__keyevent@0__:rename_to b")
	rdb.Del(ctx(), "b")
	waitMessage(t, ps, "__keyevent@0__:del b")
	// Expired, raised by active expiry: nobody touches the key again.
	rdb.Set(ctx(), "e", "1", 50*time.Millisecond)
	waitMessage(t, ps, "__keyevent@0__:expired e")

	// Only expired events now (Ex), and only keyevent.
	if err := rdb.ConfigSet(ctx(), "notify-keyspace-events", "Ex").Err(); err != nil {
		t.Fatal(err)
	}
	rdb.Set(ctx(), "quiet", "1", 0)
	rdb.Set(ctx(), "e2", "1", 30*time.Millisecond)
	m := receive(t, ps)
	if m.Channel+" "+m.Payload != "__keyevent@0__:expired e2" {
		t.Fatalf("with Ex the first event should be e2's expiry, got %s %s", m.Channel, m.Payload)
	}
	if err := rdb.ConfigSet(ctx(), "notify-keyspace-events", "KEQ").Err(); err == nil ||
		!strings.Contains(err.Error(), "Invalid event class character") {
		t.Fatalf("bad flags accepted: %v", err)
	}
}

// A subscriber that never reads is disconnected once its pending output
// would pass the hard limit; the server never holds more than the limit
// for it, however much is published.
func TestSlowSubscriberBounded(t *testing.T) {
	const hard = 256 << 10
	ts := startServer(t, Config{PubSubLimit: node.PubSubLimit{HardBytes: hard}})
	rc := ts.raw(t)
	if got := rc.do("SUBSCRIBE", "firehose"); got != "*[$subscribe $firehose :1]" {
		t.Fatal(got)
	}
	var sub *node.Session
	ts.srv.mu.Lock()
	for c := range ts.srv.conns {
		if c.sess.Subscribed() {
			sub = c.sess
		}
	}
	ts.srv.mu.Unlock()
	if sub == nil {
		t.Fatal("no subscriber")
	}
	pub := ts.client(t, nil)
	msg := strings.Repeat("x", 4096)
	const publishedMax = 256 << 20 // far more than socket buffers hold
	sent := 0
	for ; sent < publishedMax; sent += len(msg) {
		n, err := pub.Publish(ctx(), "firehose", msg).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if sent >= publishedMax {
		t.Fatalf("subscriber still connected after %d bytes published", sent)
	}
	peak := sub.OutboxPeak()
	if peak > hard {
		t.Fatalf("outbox peaked at %d bytes, over the %d hard limit", peak, hard)
	}
	if n := ts.srv.Node().PubSubDisconnects(); n != 1 {
		t.Fatalf("pubsub disconnects = %d", n)
	}
	info, _ := pub.Info(ctx(), "stats").Result()
	if !strings.Contains(info, "client_output_buffer_limit_disconnections:1\r\n") {
		t.Fatalf("INFO stats does not count the disconnection:\n%s", info)
	}
	t.Logf("disconnected after %d bytes published; outbox peak %d", sent, peak)
	if !rc.closed() {
		// it may first hand over what the socket holds; then EOF
		t.Log("connection still readable")
	}
}

// testClock is a settable clock for the soft limit.
type testClock struct{ now atomic.Int64 }

func (c *testClock) Now() int64 { return c.now.Load() }

func TestSlowSubscriberSoftLimit(t *testing.T) {
	clock := &testClock{}
	clock.now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	ts := startServer(t, Config{Clock: clock, PubSubLimit: node.PubSubLimit{HardBytes: 1 << 30, SoftBytes: 64 << 10, SoftSeconds: 60}})
	rc := ts.raw(t)
	rc.do("SUBSCRIBE", "slow")
	pub := ts.client(t, nil)
	msg := strings.Repeat("y", 4096)
	// Publish until the subscriber's outbox is above the soft limit
	// (socket buffers fill first), without moving the clock.
	var sub *node.Session
	ts.srv.mu.Lock()
	for c := range ts.srv.conns {
		if c.sess.Subscribed() {
			sub = c.sess
		}
	}
	ts.srv.mu.Unlock()
	for i := 0; ; i++ {
		if sub.OutboxPending() > 64<<10 {
			break
		}
		if i > 1<<16 {
			t.Fatal("outbox never went above the soft limit")
		}
		pub.Publish(ctx(), "slow", msg)
	}
	if n, _ := pub.Publish(ctx(), "slow", msg).Result(); n != 1 {
		t.Fatal("disconnected before the soft limit's duration passed")
	}
	// The writer may still drain below the limit now and then (which
	// restarts the count, as in Redis); once the socket is full it cannot,
	// and two appends 61 s apart above the limit disconnect.
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("still subscribed after 1000 appends 61s apart")
		}
		clock.now.Add(int64(61 * time.Second))
		if n, _ := pub.Publish(ctx(), "slow", msg).Result(); n == 0 {
			break
		}
	}
	if n := ts.srv.Node().PubSubDisconnects(); n != 1 {
		t.Fatalf("pubsub disconnects = %d", n)
	}
}

func TestClientListShowsSubscriptionsAndMulti(t *testing.T) {
	ts := startServer(t, Config{})
	sub := ts.raw(t)
	sub.do("SUBSCRIBE", "a", "b")
	sub.reply()
	sub.do("PSUBSCRIBE", "p*")
	tx := ts.raw(t)
	tx.do("MULTI")
	tx.do("SET", "k", "v")
	list := ts.raw(t).do("CLIENT", "LIST")
	for _, want := range []string{"flags=P db=0 sub=2 psub=1 ssub=0 multi=-1", "flags=x db=0 sub=0 psub=0 ssub=0 multi=1", "flags=N db=0 sub=0 psub=0 ssub=0 multi=-1"} {
		if !strings.Contains(list, want) {
			t.Fatalf("CLIENT LIST lacks %q:\n%s", want, list)
		}
	}
}
