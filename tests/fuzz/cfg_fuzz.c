/*
 * cfg_fuzz.c - the YAML config loader must reject or accept any input
 * without crashing, leaking or reading out of bounds.
 */
#include "strata/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_cfg_doc *d = NULL;
    st_err err;
    if (st_cfg_load_string("fuzz.yml", (const char *)data, size, &d, &err) == ST_OK) {
        const st_cfg *r = st_cfg_root(d);
        const char *s;
        int64_t n;
        bool b;
        st_cfg_get_str(r, "name", NULL, &s, &err);
        st_cfg_get_int(r, "n", 0, &n, &err);
        st_cfg_get_bool(r, "b", false, &b, &err);
        st_cfg_doc_free(d);
    }
    return 0;
}
