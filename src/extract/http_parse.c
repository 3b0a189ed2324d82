/*
 * http_parse.c - parsers for the statistics API responses into a table of
 * text cells: SDMX-CSV (ECB `format=csvdata`, OECD SDMX-CSV 1.0/2.0: RFC 4180
 * quoting, header row of dimension and attribute ids), SDMX-ML 2.1
 * GenericData (series keys, attributes and observations), and World Bank
 * Indicators API v2 JSON pages ([header, rows], or an error message object).
 * Every parser bounds what it accepts and names the position of bad input.
 */
#include "extract/extract_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLS 512

void x_table_free(x_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_cols; i++)
        st_free(t->cols[i]);
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
        st_free(t->cells[i]);
    st_free(t->cols);
    st_free(t->cells);
    memset(t, 0, sizeof *t);
}

static st_rc add_row(x_table *t, char **vals)
{
    if (t->n_rows == t->cap_rows) {
        size_t cap = t->cap_rows ? t->cap_rows * 2 : 64;
        char **nc = st_realloc(t->cells, cap * t->n_cols * sizeof *nc);
        if (!nc)
            return ST_ERR_NOMEM;
        t->cells = nc;
        t->cap_rows = cap;
    }
    memcpy(t->cells + t->n_rows * t->n_cols, vals, t->n_cols * sizeof *vals);
    t->n_rows++;
    return ST_OK;
}

static ssize_t col_index(x_table *t, const char *name, bool create)
{
    for (size_t i = 0; i < t->n_cols; i++)
        if (!strcmp(t->cols[i], name))
            return (ssize_t)i;
    if (!create || t->n_rows || t->n_cols >= MAX_COLS)
        return -1;
    char **nc = st_realloc(t->cols, (t->n_cols + 1) * sizeof *nc);
    if (!nc)
        return -1;
    t->cols = nc;
    t->cols[t->n_cols] = st_strdup(name);
    return (ssize_t)t->n_cols++;
}

/* ---- SDMX-CSV ---- */

/* Reads one CSV field at *pos; returns false at end of input. */
static st_rc csv_field(const char *d, size_t len, size_t *pos, st_buf *f, bool *eol, bool *eof,
                       st_err *err)
{
    size_t i = *pos;
    st_buf_reset(f);
    st_buf_append(f, "", 0);
    *eol = *eof = false;
    if (i < len && d[i] == '"') {
        size_t start = i++;
        for (;;) {
            if (i >= len)
                return st_fail(err, ST_ERR_PARSE, "SDMX-CSV: unterminated quote at byte %zu", start);
            if (d[i] == '"') {
                if (i + 1 < len && d[i + 1] == '"') {
                    st_buf_putc(f, '"');
                    i += 2;
                    continue;
                }
                i++;
                break;
            }
            if (st_buf_putc(f, d[i++]))
                return st_fail(err, ST_ERR_LIMIT, "SDMX-CSV: field too long at byte %zu", start);
        }
        if (i < len && d[i] != ',' && d[i] != '\n' && d[i] != '\r')
            return st_fail(err, ST_ERR_PARSE, "SDMX-CSV: text after closing quote at byte %zu", i);
    } else {
        size_t s = i;
        while (i < len && d[i] != ',' && d[i] != '\n' && d[i] != '\r')
            i++;
        if (st_buf_append(f, d + s, i - s))
            return st_fail(err, ST_ERR_LIMIT, "SDMX-CSV: field too long at byte %zu", s);
    }
    if (i >= len) {
        *eol = *eof = true;
    } else if (d[i] == ',') {
        i++;
    } else {
        if (d[i] == '\r')
            i++;
        if (i < len && d[i] == '\n')
            i++;
        *eol = true;
        *eof = i >= len;
    }
    *pos = i;
    return ST_OK;
}

st_rc x_parse_sdmx_csv(const char *d, size_t len, x_table *t, st_err *err)
{
    memset(t, 0, sizeof *t);
    if (len >= 3 && (unsigned char)d[0] == 0xEF && (unsigned char)d[1] == 0xBB &&
        (unsigned char)d[2] == 0xBF) {
        d += 3;
        len -= 3;
    }
    st_buf f;
    st_buf_init(&f, 1 << 20);
    size_t pos = 0;
    bool eol = false, eof = len == 0;
    st_rc rc = ST_OK;
    while (!eol && !eof) {
        rc = csv_field(d, len, &pos, &f, &eol, &eof, err);
        if (rc)
            goto fail;
        if (col_index(t, f.data, false) >= 0 || col_index(t, f.data, true) < 0) {
            rc = st_fail(err, ST_ERR_PARSE, "SDMX-CSV: bad or duplicate header column '%.60s'",
                         f.data);
            goto fail;
        }
    }
    if (t->n_cols < 2 || (!col_index(t, "OBS_VALUE", false) && col_index(t, "OBS_VALUE", false) < 0)) {
        rc = st_fail(err, ST_ERR_PARSE, "SDMX-CSV: header has no OBS_VALUE column");
        goto fail;
    }
    if (col_index(t, "OBS_VALUE", false) < 0 || col_index(t, "TIME_PERIOD", false) < 0) {
        rc = st_fail(err, ST_ERR_PARSE, "SDMX-CSV: header lacks TIME_PERIOD or OBS_VALUE");
        goto fail;
    }
    size_t line = 1;
    while (!eof) {
        line++;
        char **vals = st_calloc(t->n_cols + 1, sizeof *vals);
        size_t n = 0;
        eol = false;
        while (!eol) {
            rc = csv_field(d, len, &pos, &f, &eol, &eof, err);
            if (rc == ST_OK && n >= t->n_cols)
                rc = st_fail(err, ST_ERR_PARSE, "SDMX-CSV line %zu: more than %zu fields", line,
                             t->n_cols);
            if (rc) {
                for (size_t i = 0; i < n; i++)
                    st_free(vals[i]);
                st_free(vals);
                goto fail;
            }
            vals[n++] = f.len ? st_strndup(f.data, f.len) : NULL;
        }
        if (n == 1 && !vals[0]) {   /* blank line */
            st_free(vals);
            continue;
        }
        if (n != t->n_cols) {
            for (size_t i = 0; i < n; i++)
                st_free(vals[i]);
            st_free(vals);
            rc = st_fail(err, ST_ERR_PARSE, "SDMX-CSV line %zu: %zu fields, header has %zu", line,
                         n, t->n_cols);
            goto fail;
        }
        rc = add_row(t, vals);
        st_free(vals);
        if (rc)
            goto fail;
    }
    st_buf_free(&f);
    return ST_OK;
fail:
    st_buf_free(&f);
    x_table_free(t);
    return rc;
}

/* ---- SDMX-ML 2.1 GenericData (a small tag scanner, no DTD/entities beyond the basic five) ---- */

static const char *attr(const char *tag, const char *end, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *p = tag; p + nl + 2 < end; p++) {
        if ((p == tag || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n') &&
            !strncmp(p, name, nl) && p[nl] == '=' && (p[nl + 1] == '"' || p[nl + 1] == '\'')) {
            char q = p[nl + 1];
            const char *v = p + nl + 2;
            const char *e = memchr(v, q, (size_t)(end - v));
            if (!e)
                return NULL;
            *vlen = (size_t)(e - v);
            return v;
        }
    }
    return NULL;
}

static char *xml_text(const char *v, size_t n)
{
    st_buf b;
    st_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '&') {
            static const struct { const char *e; char c; } ents[] = {
                {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
            bool hit = false;
            for (size_t k = 0; k < 5 && !hit; k++) {
                size_t el = strlen(ents[k].e);
                if (i + el <= n && !strncmp(v + i, ents[k].e, el)) {
                    st_buf_putc(&b, ents[k].c);
                    i += el - 1;
                    hit = true;
                }
            }
            if (!hit)
                st_buf_putc(&b, '&');
        } else {
            st_buf_putc(&b, v[i]);
        }
    }
    if (!b.data)
        st_buf_append(&b, "", 0);
    return st_buf_take(&b);
}

/* Local name of a tag starting after '<' (namespace prefix dropped). */
static size_t local_name(const char *p, const char *end, const char **name)
{
    const char *s = p;
    while (p < end && *p != ' ' && *p != '>' && *p != '/' && *p != '\n' && *p != '\t' && *p != '\r')
        p++;
    const char *colon = memchr(s, ':', (size_t)(p - s));
    *name = colon ? colon + 1 : s;
    return (size_t)(p - *name);
}

st_rc x_parse_sdmx_ml(const char *d, size_t len, x_table *t, st_err *err)
{
    memset(t, 0, sizeof *t);
    const char *end = d + len, *p = d;
    /* series-level values, then per-observation values */
    char *skeys[MAX_COLS];
    char *svals[MAX_COLS];
    size_t n_s = 0;
    char **obs = NULL;
    int in = 0;   /* 1 = SeriesKey/Attributes of a series, 2 = an Obs */
    bool seen_dataset = false;
    st_rc rc = ST_OK;
    /* Pass 1 is not needed: columns are fixed from the first series and first obs. */
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt)
            break;
        const char *gt = memchr(lt, '>', (size_t)(end - lt));
        if (!gt) {
            rc = st_fail(err, ST_ERR_PARSE, "SDMX-ML: unterminated tag at byte %zu",
                         (size_t)(lt - d));
            break;
        }
        p = gt + 1;
        if (lt[1] == '?' || lt[1] == '!')
            continue;
        bool closing = lt[1] == '/';
        const char *nm;
        size_t nl = local_name(lt + 1 + closing, gt, &nm);
#define IS(s) (nl == strlen(s) && !strncmp(nm, s, nl))
        if (IS("DataSet"))
            seen_dataset = true;
        if (IS("Series") && !closing) {
            for (size_t i = 0; i < n_s; i++) {
                st_free(skeys[i]);
                st_free(svals[i]);
            }
            n_s = 0;
            in = 1;
        } else if (IS("Obs") && !closing) {
            in = 2;
            if (obs) {   /* an Obs that never closed: drop it */
                for (size_t i = 0; i < MAX_COLS; i++)
                    st_free(obs[i]);
                st_free(obs);
            }
            obs = st_calloc(MAX_COLS + 1, sizeof *obs);
            /* series values first, so the columns are series dims + attrs */
            for (size_t i = 0; i < n_s && rc == ST_OK; i++) {
                ssize_t ci = col_index(t, skeys[i], true);
                if (ci >= 0) {   /* later series may carry extra attributes: not columns */
                    st_free(obs[ci]);   /* a key repeated in the series: the last wins */
                    obs[ci] = st_strdup(svals[i]);
                }
            }
        } else if (IS("Obs") && closing && obs) {
            if (rc == ST_OK && t->n_cols) {
                char **row = st_calloc(t->n_cols + 1, sizeof *row);
                memcpy(row, obs, t->n_cols * sizeof *row);
                rc = add_row(t, row);
                st_free(row);
            } else {
                for (size_t i = 0; i < MAX_COLS; i++)
                    st_free(obs[i]);
            }
            st_free(obs);
            obs = NULL;
            in = 1;
        } else if (!closing && (IS("Value") || IS("ObsDimension") || IS("ObsValue"))) {
            size_t il = 0, vl = 0;
            const char *id = attr(lt, gt, "id", &il);
            const char *v = attr(lt, gt, "value", &vl);
            char *key = NULL;
            if (IS("ObsDimension"))
                key = st_strdup(id ? "TIME_PERIOD" : "TIME_PERIOD");
            else if (IS("ObsValue"))
                key = st_strdup("OBS_VALUE");
            else if (id)
                key = st_strndup(id, il);
            if (!key || !v) {
                st_free(key);
                if (!v)
                    continue;
                rc = st_fail(err, ST_ERR_PARSE, "SDMX-ML: Value without id at byte %zu",
                             (size_t)(lt - d));
                break;
            }
            if (in == 2 && obs) {
                ssize_t ci = col_index(t, key, true);
                if (ci >= 0) {
                    st_free(obs[ci]);
                    obs[ci] = xml_text(v, vl);
                }
                st_free(key);
            } else if (in == 1 && n_s < MAX_COLS) {
                skeys[n_s] = key;
                svals[n_s++] = xml_text(v, vl);
            } else {
                st_free(key);
            }
        }
#undef IS
    }
    for (size_t i = 0; i < n_s; i++) {
        st_free(skeys[i]);
        st_free(svals[i]);
    }
    if (obs) {
        for (size_t i = 0; i < MAX_COLS; i++)
            st_free(obs[i]);
        st_free(obs);
    }
    if (rc == ST_OK && !seen_dataset)
        rc = st_fail(err, ST_ERR_PARSE, "SDMX-ML: no DataSet element");
    if (rc)
        x_table_free(t);
    return rc;
}

/* ---- World Bank v2 JSON ---- */

st_rc x_parse_worldbank(const char *d, size_t len, x_table *t, st_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(d, len, 0, &je);
    if (!root)
        return st_fail(err, ST_ERR_PARSE, "World Bank JSON: %s at line %d", je.text, je.line);
    st_rc rc = ST_OK;
    json_t *hdr = json_array_get(root, 0);
    json_t *msg = json_object_get(hdr, "message");
    if (msg) {
        json_t *m0 = json_array_get(msg, 0);
        rc = st_fail(err, ST_ERR_REMOTE, "World Bank API error %s: %s: %s",
                     json_string_value(json_object_get(m0, "id")) ?: "?",
                     json_string_value(json_object_get(m0, "key")) ?: "?",
                     json_string_value(json_object_get(m0, "value")) ?: "");
        json_decref(root);
        return rc;
    }
    json_t *rows = json_array_get(root, 1);
    if (!json_is_object(hdr) || !(json_is_array(rows) || json_is_null(rows) || !rows)) {
        json_decref(root);
        return st_fail(err, ST_ERR_PARSE, "World Bank JSON: expected [header, rows]");
    }
    json_t *pages = json_object_get(hdr, "pages"), *page = json_object_get(hdr, "page");
    t->pages = json_is_integer(pages) ? (int)json_integer_value(pages)
               : json_is_string(pages) ? atoi(json_string_value(pages)) : 1;
    t->page = json_is_integer(page) ? (int)json_integer_value(page)
              : json_is_string(page) ? atoi(json_string_value(page)) : 1;
    static const char *const cols[] = {"indicator_id", "indicator", "country_id", "country",
                                       "countryiso3code", "date", "value", "unit", "obs_status",
                                       "decimal"};
    const size_t nc = sizeof cols / sizeof cols[0];
    if (!t->n_cols)
        for (size_t i = 0; i < nc; i++)
            col_index(t, cols[i], true);
    size_t idx;
    json_t *r;
    json_array_foreach(rows, idx, r) {
        if (!json_is_object(r)) {
            rc = st_fail(err, ST_ERR_PARSE, "World Bank JSON: row %zu is not an object", idx);
            break;
        }
        char **v = st_calloc(nc + 1, sizeof *v);
        json_t *ind = json_object_get(r, "indicator"), *cty = json_object_get(r, "country");
        json_t *src[] = {json_object_get(ind, "id"), json_object_get(ind, "value"),
                         json_object_get(cty, "id"), json_object_get(cty, "value"),
                         json_object_get(r, "countryiso3code"), json_object_get(r, "date"),
                         json_object_get(r, "value"), json_object_get(r, "unit"),
                         json_object_get(r, "obs_status"), json_object_get(r, "decimal")};
        for (size_t i = 0; i < nc; i++) {
            json_t *x = src[i];
            if (json_is_string(x) && json_string_length(x))
                v[i] = st_strdup(json_string_value(x));
            else if (json_is_integer(x))
                v[i] = st_sprintf("%lld", (long long)json_integer_value(x));
            else if (json_is_real(x))
                v[i] = st_sprintf("%.17g", json_real_value(x));
        }
        rc = add_row(t, v);
        st_free(v);
        if (rc)
            break;
    }
    json_decref(root);
    return rc;
}
