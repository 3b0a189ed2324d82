/*
 * select_fuzz.c - the selection expression parser must accept or reject any
 * input without crashing or leaking; accepted expressions are evaluated
 * over a small fixed DAG.
 */
#include "strata/orch.h"

#include <string.h>

static st_rc noop(void *arg, st_asset_ctx *ctx, st_err *err)
{
    (void)arg;
    (void)ctx;
    (void)err;
    return ST_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static st_project *p;
    static st_dag *d;
    if (!p) {
        st_project_new("/nonexistent", &p, NULL);
        const char *on_a[] = {"bronze.a", NULL}, *on_b[] = {"silver.b", NULL};
        st_project_add_custom(p, "bronze.a", NULL, "raw", noop, NULL, NULL);
        st_project_add_custom(p, "silver.b", on_a, NULL, noop, NULL, NULL);
        st_project_add_custom(p, "gold.c", on_b, "finance,daily", noop, NULL, NULL);
        st_project_add_custom(p, "gold.d", on_a, "web", noop, NULL, NULL);
        st_dag_build(p, &d, NULL);
    }
    char *expr = st_strndup((const char *)data, size);
    if (!expr)
        return 0;
    st_select *s = NULL;
    st_err err;
    if (st_select_parse(expr, &s, &err) == ST_OK) {
        bool out[8], direct[8];
        if (d)
            st_select_eval(s, d, out, direct, &err);
        st_select_free(s);
    }
    st_free(expr);
    return 0;
}
