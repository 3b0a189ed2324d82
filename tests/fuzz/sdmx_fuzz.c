/*
 * sdmx_fuzz.c - fuzzes the SDMX response parsers of the extraction module
 * (SDMX-CSV and SDMX-ML GenericData; the first byte picks which).
 */
#include "extract/extract_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    x_table t;
    st_err err;
    const char *d = (const char *)data + 1;
    st_rc rc = data[0] == '<' ? x_parse_sdmx_ml((const char *)data, size, &t, &err)
                              : x_parse_sdmx_csv(d, size - 1, &t, &err);
    if (rc == ST_OK)
        x_table_free(&t);
    return 0;
}
