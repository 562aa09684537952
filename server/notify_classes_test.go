package server

import (
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/internal/redistest"
)

// Each notify-keyspace-events class lets through exactly the events Redis
// puts in it: the same commands, run on Redis and keel with one class
// switched on at a time, publish the same keyevent messages.
func TestNotificationClassesMatchRedis(t *testing.T) {
	redisAddr := redistest.Start(t)
	keel := startServer(t, Config{})
	commands := [][]any{
		{"SET", "s", "1"}, {"SETRANGE", "s", 0, "x"}, {"APPEND", "s", "y"}, {"SETBIT", "b", 3, 1},
		{"BITFIELD", "b", "SET", "u8", 0, 7}, {"BITOP", "OR", "b2", "b"}, {"INCRBY", "n", 2},
		{"RPUSH", "l", "a", "b", "c", "a"}, {"LPUSH", "l", "z"}, {"LINSERT", "l", "BEFORE", "b", "q"},
		{"LSET", "l", 0, "y"}, {"LREM", "l", 1, "a"}, {"LTRIM", "l", 0, 3}, {"LPOP", "l"}, {"RPOP", "l"},
		{"LMOVE", "l", "l2", "LEFT", "RIGHT"},
		{"HSET", "h", "f", "1"}, {"HINCRBY", "h", "f", 1}, {"HINCRBYFLOAT", "h", "f", 1.5}, {"HDEL", "h", "f"},
		{"SADD", "x", "a", "b", "c"}, {"SADD", "y", "b"}, {"SREM", "x", "c"}, {"SMOVE", "x", "y", "a"},
		{"SINTERSTORE", "si", "x", "y"}, {"SUNIONSTORE", "su", "x", "y"}, {"SDIFFSTORE", "sd", "y", "x"},
		{"ZADD", "z", 1, "a", 2, "b", 3, "c", 4, "d", 5, "e"}, {"ZINCRBY", "z", 1, "a"}, {"ZREM", "z", "e"},
		{"ZREMRANGEBYRANK", "z", 0, 0}, {"ZREMRANGEBYSCORE", "z", 4, 4}, {"ZADD", "zl", 0, "k", 0, "m"},
		{"ZREMRANGEBYLEX", "zl", "[k", "[k"}, {"ZPOPMIN", "z"}, {"ZPOPMAX", "z"},
		{"ZADD", "z2", 1, "x"}, {"ZUNIONSTORE", "zu", 2, "z", "z2"}, {"ZINTERSTORE", "zi", 2, "z", "z2"},
		{"ZDIFFSTORE", "zd", 2, "z", "z2"}, {"ZRANGESTORE", "zr", "z2", 0, -1},
		{"EXPIRE", "s", 100}, {"PERSIST", "s"}, {"RENAME", "s", "s2"}, {"DEL", "s2"},
	}
	events := func(addr, classes string) []string {
		c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
		defer c.Close()
		if err := c.FlushAll(ctx()).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.ConfigSet(ctx(), "notify-keyspace-events", classes).Err(); err != nil {
			t.Fatal(err)
		}
		sub := c.PSubscribe(ctx(), "__keyevent@0__:*")
		defer sub.Close()
		if _, err := sub.Receive(ctx()); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range commands {
			if err := c.Do(ctx(), cmd...).Err(); err != nil && err != redis.Nil {
				t.Fatalf("%s: %v %v", addr, cmd, err)
			}
		}
		if err := c.Publish(ctx(), "__keyevent@0__:end", "end").Err(); err != nil {
			t.Fatal(err)
		}
		var out []string
		for {
			m, err := sub.ReceiveTimeout(ctx(), 5*time.Second)
			if err != nil {
				t.Fatalf("%s: waiting for events: %v (got %v)", addr, err, out)
			}
			msg, ok := m.(*redis.Message)
			if !ok {
				continue
			}
			if msg.Channel == "__keyevent@0__:end" {
				return out
			}
			out = append(out, msg.Channel[len("__keyevent@0__:"):]+" "+msg.Payload)
		}
	}
	for _, classes := range []string{"E$", "El", "Eh", "Es", "Ez", "Eg", "EA"} {
		want, got := events(redisAddr, classes), events(keel.addr, classes)
		if !slices.Equal(got, want) {
			t.Errorf("notify-keyspace-events %s:\n keel:  %v\n redis: %v", classes, got, want)
		}
	}
}
