/* fuzz_tsv.c — libFuzzer target for the TSV reader; options and checks in fuzz_ingest.h. */
#include "fuzz_ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[4] = {"fuzz.tsv", "fuzz.tsv", "fuzz.tab", "fuzz.tsv.gz"};
    return fuzz_ingest(data, size, SQ_FMT_TSV, names, "user,item,-,ts");
}
