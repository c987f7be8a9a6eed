/* fuzz_csv.c — libFuzzer target for the CSV reader (RFC 4180 quoting, delimiter detection); options
 * and checks in fuzz_ingest.h. */
#include "fuzz_ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[4] = {"fuzz.csv", "fuzz.csv", "fuzz.txt", "fuzz.csv.gz"};
    return fuzz_ingest(data, size, SQ_FMT_CSV, names, "user,item,ts,behaviour,value");
}
