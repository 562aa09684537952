// spin: loops forever. keel stops it when its fuel runs out.
#include "keel.h"

KEEL_FUNCTION(spin) {
    volatile int64_t i = 0;
    for (;;) i++;
}
