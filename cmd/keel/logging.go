package main

import (
	"context"
	"io"
	"log"
	"log/slog"
	"os"

	"github.com/cockroachdb/errors"
)

// Logging: log/slog's text format (time=... level=... msg=...), one event
// a line, to stderr or --logfile (appended to, as Redis does). --loglevel
// takes Redis's names; CONFIG SET loglevel changes it while running.
// Every package logs through the node's or server's Logf, so key names
// are the same everywhere: time, level, msg.

// slogLevels maps Redis's loglevel names to slog's levels; verbose sits
// between debug and notice (slog's info).
var slogLevels = map[string]slog.Level{
	"debug":   slog.LevelDebug,
	"verbose": slog.LevelDebug + 2,
	"notice":  slog.LevelInfo,
	"warning": slog.LevelWarn,
}

// processLogger is the process's logger and what it writes to.
type processLogger struct {
	*log.Logger // Printf writes one event at notice
	slog        *slog.Logger
	level       *slog.LevelVar
	out         io.Closer // the log file, nil for stderr
}

// newLogger opens the log: file "" is stderr; level is a loglevel name.
func newLogger(file, level string) (*processLogger, error) {
	var w io.Writer = os.Stderr
	var closer io.Closer
	if file != "" {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, errors.Wrapf(err, "open logfile")
		}
		w, closer = f, f
	}
	lv := new(slog.LevelVar)
	l := &processLogger{level: lv, out: closer}
	l.setLevel(level)
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv, ReplaceAttr: redisLevelNames})
	l.slog = slog.New(h)
	l.Logger = slog.NewLogLogger(h, slog.LevelInfo)
	return l, nil
}

// setLevel applies a loglevel name (notice when unknown: the node checks
// the names before they get here).
func (l *processLogger) setLevel(name string) {
	lv, ok := slogLevels[name]
	if !ok {
		lv = slog.LevelInfo
	}
	l.level.Set(lv)
}

// always logs msg whatever the level: the "ready" line scripts wait for
// (DESIGN.md's contract) must come even under loglevel warning. It is
// written at notice, or at the configured level when that is higher.
func (l *processLogger) always(msg string) {
	l.slog.Log(context.Background(), max(l.level.Level(), slog.LevelInfo), msg)
}

func (l *processLogger) Close() error {
	if l.out == nil {
		return nil
	}
	return l.out.Close()
}

// redisLevelNames writes levels by Redis's names (notice, not INFO).
func redisLevelNames(_ []string, a slog.Attr) slog.Attr {
	if a.Key != slog.LevelKey {
		return a
	}
	lv, _ := a.Value.Any().(slog.Level)
	switch {
	case lv < slogLevels["verbose"]:
		a.Value = slog.StringValue("debug")
	case lv < slog.LevelInfo:
		a.Value = slog.StringValue("verbose")
	case lv < slog.LevelWarn:
		a.Value = slog.StringValue("notice")
	default:
		a.Value = slog.StringValue("warning")
	}
	return a
}
