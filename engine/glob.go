package engine

// GlobMatch is Redis's stringmatchlen for every pattern keel matches:
// KEYS and SCAN here, and CONFIG GET, COMMAND LIST FILTERBY PATTERN,
// PSUBSCRIBE, PUBSUB CHANNELS and FUNCTION LIST LIBRARYNAME above. One
// matcher, never exponential, so a hostile pattern costs at most
// O(len(pattern)·len(s)).
func GlobMatch(pattern, s []byte) bool { return globMatch(pattern, s) }

// globMatch reports whether s matches the glob pattern p with the meaning
// of Redis's stringmatchlen: '*' any run, '?' any byte, '[abc]', '[^a]',
// '[a-z]' (reversed ranges allowed) and '\' escaping the next byte (a
// trailing '\' is a literal). An unterminated class ends at the pattern's
// end.
//
// Every token but '*' matches exactly one byte, so backtracking to the
// last '*' only is enough: the cost is O(len(p)·len(s)) in the worst case,
// never exponential (Redis needs a nesting guard for its recursive
// matcher; this one has nothing to guard).
func globMatch(p, s []byte) bool {
	if len(s) == 0 {
		// Redis's matcher only gets to skip stars after consuming a byte:
		// the empty string matches the empty pattern only.
		return len(p) == 0
	}
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			if p[pi] == '*' {
				starP, starS = pi, si
				pi++
				continue
			}
			if ok, next := matchOne(p, pi, s[si]); ok {
				pi, si = next, si+1
				continue
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		pi, si = starP+1, starS
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchOne matches the single-byte token at p[pi] against c and returns
// the index after the token.
func matchOne(p []byte, pi int, c byte) (bool, int) {
	switch p[pi] {
	case '?':
		return true, pi + 1
	case '\\':
		if pi+1 < len(p) {
			return p[pi+1] == c, pi + 2
		}
		return c == '\\', pi + 1
	case '[':
		i := pi + 1
		not := i < len(p) && p[i] == '^'
		if not {
			i++
		}
		match := false
		for {
			if i < len(p) && p[i] == '\\' && i+1 < len(p) {
				i++
				if p[i] == c {
					match = true
				}
			} else if i < len(p) && p[i] == ']' {
				break
			} else if i >= len(p) {
				i--
				break
			} else if i+2 < len(p) && p[i+1] == '-' {
				lo, hi := p[i], p[i+2]
				if lo > hi {
					lo, hi = hi, lo
				}
				i += 2
				if lo <= c && c <= hi {
					match = true
				}
			} else if p[i] == c {
				match = true
			}
			i++
		}
		if not {
			match = !match
		}
		return match, i + 1
	default:
		return p[pi] == c, pi + 1
	}
}

// globPrefix returns the literal bytes every string matching p starts
// with, and whether p is exactly that prefix followed only by stars (so
// every string with the prefix matches).
func globPrefix(p []byte) (prefix []byte, rest bool) {
	for i := 0; i < len(p); {
		switch p[i] {
		case '*':
			for j := i; j < len(p); j++ {
				if p[j] != '*' {
					return prefix, false
				}
			}
			return prefix, true
		case '?', '[':
			return prefix, false
		case '\\':
			if i+1 < len(p) {
				prefix = append(prefix, p[i+1])
				i += 2
			} else {
				prefix = append(prefix, '\\')
				i++
			}
		default:
			prefix = append(prefix, p[i])
			i++
		}
	}
	return prefix, false
}
