/* fuzz_plain.c — libFuzzer target for the plain "user item" reader; options and checks in
 * fuzz_ingest.h. */
#include "fuzz_ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[4] = {"fuzz.txt", "fuzz.txt", "fuzz", "fuzz.txt.gz"};
    return fuzz_ingest(data, size, SQ_FMT_PLAIN, names, "user,item,ts");
}
