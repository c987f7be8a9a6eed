/* fuzz_movielens.c — libFuzzer target for the MovieLens "::" reader (ratings.dat, movies.dat,
 * users.dat); options and checks in fuzz_ingest.h. */
#include "fuzz_ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[4] = {"ratings.dat", "movies.dat", "users.dat",
                                         "ratings.dat.gz"};
    return fuzz_ingest(data, size, SQ_FMT_MOVIELENS, names, "user,item,value,ts");
}
