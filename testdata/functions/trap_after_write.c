// trap_after_write: FCALL trap_after_write 1 <key>  writes the key, then
// traps; keel discards the write.
#include "keel.h"

KEEL_FUNCTION(trap_after_write) {
    keel_buf key = keel_key(0);
    static const char v[] = "written";
    keel_set(key.ptr, key.len, v, sizeof v - 1, 0);
    __builtin_trap();
}
