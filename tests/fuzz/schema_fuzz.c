/*
 * schema_fuzz.c - the schema YAML parser and registration (compatibility
 * checks included) must accept or reject any bytes without crashing or
 * leaking; an accepted schema must be findable and give a column set.
 */
#include "strata/load.h"
#include "load/load_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_registry *r = NULL;
    st_err err;
    if (st_registry_new(&r, &err) != ST_OK)
        return 0;
    /* twice: the second pass exercises the same-version and compatibility paths */
    for (int k = 0; k < 2; k++) {
        if (st_registry_add_yaml(r, "fuzz.yml", (const char *)data, size, &err) != ST_OK &&
            strlen(err.msg) == 0)
            abort();   /* a refusal must say why */
    }
    const char *const *fams;
    size_t n = st_registry_families(r, &fams);
    for (size_t i = 0; i < n; i++) {
        st_bcol *cols = NULL;
        size_t nc = 0;
        if (st_registry_columns(r, fams[i], &cols, &nc, &err) == ST_OK)
            st_free(cols);
    }
    st_registry_free(r);
    return 0;
}
