/*
 * fastjson_fuzz.c - the loader's flat JSON reader against jansson on any
 * bytes: it must never accept what jansson rejects, and whatever both accept
 * (or jansson alone, through the conversion) must print exactly as
 * json_dumps prints it.
 */
#include "load/fastjson.h"

#include <stdlib.h>
#include <string.h>

static void same_text(const st_fj *d, json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    st_buf b;
    st_buf_init(&b, 0);
    if (!want || st_fj_dump(d, 0, &b) != ST_OK || strcmp(b.data, want))
        abort();
    /* every top-level key reads as jansson's value */
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m) {
            int x = st_fj_get(d, 0, k, strlen(k));
            if (x <= 0)
                abort();
            if (json_is_string(m) && (d->n[x].type != ST_FJ_STR ||
                                      strcmp(st_fj_str(d, x), json_string_value(m))))
                abort();
            if (json_is_integer(m) && (d->n[x].type != ST_FJ_INT ||
                                       d->n[x].v.i != (int64_t)json_integer_value(m)))
                abort();
        }
    }
    st_buf_free(&b);
    free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static st_fj d;   /* reused across inputs, as the loader reuses it */
    const char *p = (const char *)data;
    json_error_t jerr;
    json_t *v = json_loadb(p, size, 0, &jerr);
    bool fast = st_fj_parse(&d, p, size);
    if (fast && !v)
        abort();
    if (v) {
        if (fast)
            same_text(&d, v);
        if (st_fj_from_jansson(&d, v, NULL) != ST_OK)
            abort();
        same_text(&d, v);
        json_decref(v);
    }
    return 0;
}
