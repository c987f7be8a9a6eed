/* fuzz_jsonl.c — libFuzzer target for the JSON-lines reader; options and checks in fuzz_ingest.h.
 */
#include "fuzz_ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[4] = {"fuzz.jsonl", "fuzz.jsonl", "fuzz.json", "fuzz.jsonl.gz"};
    return fuzz_ingest(data, size, SQ_FMT_JSONL, names, "user,item,ts");
}
