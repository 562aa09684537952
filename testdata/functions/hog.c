// hog: grows its memory without end, touching every new page. keel's
// memory cap makes memory.grow fail; the next touch traps, and keel
// reports the memory limit.
#include "keel.h"

KEEL_FUNCTION(hog) {
    for (;;) {
        int32_t prev = __builtin_wasm_memory_grow(0, 16);
        volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)((uint32_t)prev * 65536u);
        for (int i = 0; i < 16; i++) p[i * 65536] = 1;
    }
}
