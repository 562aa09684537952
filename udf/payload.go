package udf

import (
	"bytes"
	"strings"
)

// payloadEngine is the engine name in a FUNCTION LOAD payload's first
// line, as "lua" is in Redis's "#!lua name=mylib".
const payloadEngine = "wasm"

// ParsePayload splits a FUNCTION LOAD payload, `#!wasm name=<lib>\n`
// followed by the module's bytes, into the library name and the module.
// Errors read like Redis's for the same mistakes.
func ParsePayload(payload []byte) (name string, wasm []byte, err error) {
	nl := bytes.IndexByte(payload, '\n')
	if !bytes.HasPrefix(payload, []byte("#!")) || nl < 0 {
		return "", nil, userErrorf("ERR Missing library metadata")
	}
	header := strings.Fields(string(payload[2:nl]))
	if len(header) == 0 {
		return "", nil, userErrorf("ERR Missing library metadata")
	}
	if !strings.EqualFold(header[0], payloadEngine) {
		return "", nil, userErrorf("ERR Engine '%s' not found", header[0])
	}
	for _, kv := range header[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k != "name" {
			return "", nil, userErrorf("ERR Invalid metadata value given: %s", kv)
		}
		if name != "" {
			return "", nil, userErrorf("ERR Invalid metadata value, name argument was given multiple times")
		}
		name = v
	}
	if name == "" {
		return "", nil, userErrorf("ERR Library name was not given")
	}
	if err := checkName("Library", name); err != nil {
		return "", nil, err
	}
	return name, payload[nl+1:], nil
}

// FormatPayload is ParsePayload's inverse: what `keel function load` sends.
func FormatPayload(name string, wasm []byte) []byte {
	out := make([]byte, 0, len(name)+len(wasm)+16)
	out = append(out, "#!"+payloadEngine+" name="+name+"\n"...)
	return append(out, wasm...)
}

// checkName applies Redis's rule for library and function names.
func checkName(what, name string) error {
	if name == "" {
		return userErrorf("ERR %s names can only contain letters, numbers, or underscores(_) and must be at least one character long", strings.ToLower(what))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return userErrorf("ERR %s names can only contain letters, numbers, or underscores(_) and must be at least one character long", strings.ToLower(what))
		}
	}
	return nil
}
