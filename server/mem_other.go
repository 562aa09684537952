//go:build !linux

package server

func rssBytes() uint64          { return 0 }
func totalSystemMemory() uint64 { return 0 }
