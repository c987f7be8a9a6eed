/* fuzz_recbole.c — libFuzzer target for the RecBole atomic-file reader (.inter, .item, .user);
 * options and checks in fuzz_ingest.h. */
#include "fuzz_ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[4] = {"fuzz.inter", "fuzz.item", "fuzz.user", "fuzz.inter.gz"};
    return fuzz_ingest(data, size, SQ_FMT_RECBOLE, names, "user,item,value,ts");
}
