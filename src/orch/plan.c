/*
 * plan.c - `strata plan`: for each selected asset, in topological order,
 * whether it would run and why (never materialized, an input has a newer
 * version than the one it last read, its schedule is due, selected
 * explicitly), from the run history and the tables' Delta versions.
 */
#include "orch_int.h"

#include <string.h>

void st_plan_free(st_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        st_free(p->items[i].why);
    st_free(p->items);
    st_free(p);
}

st_rc st_orch_plan(st_orch *o, const char *select, const char *exclude, int64_t now_ms,
                   st_plan **out, st_err *err)
{
    const st_dag *d = o->dag;
    bool *sel = st_calloc(d->n + 1, sizeof *sel);
    bool *direct = st_calloc(d->n + 1, sizeof *direct);
    int64_t *stamp = st_calloc(d->n + 1, sizeof *stamp);
    st_plan *p = st_calloc(1, sizeof *p);
    st_rc rc = sel && direct && stamp && p ? ST_OK : st_fail(err, ST_ERR_NOMEM, "plan");
    rc = rc ? rc : st_select_resolve(d, select, exclude, sel, direct, err);
    if (rc == ST_OK) {
        p->items = st_calloc(d->n + 1, sizeof *p->items);
        if (!p->items)
            rc = st_fail(err, ST_ERR_NOMEM, "plan");
    }
    for (size_t i = 0; rc == ST_OK && i < d->n; i++)
        stamp[i] = orch_stamp(o, d->a[i]);
    for (size_t i = 0; rc == ST_OK && i < d->n; i++) {
        if (!sel[i])
            continue;
        const st_asset_def *a = d->a[i];
        st_plan_item *it = &p->items[p->n++];
        it->asset = a;
        it->run = a->kind != ST_ASSET_SOURCE;
        it->version = -1;
        char *path = st_project_table_path(o->p, a->key);
        if (path)
            st_delta_latest_version(path, &it->version, NULL);
        st_free(path);
        st_buf b;
        st_buf_init(&b, 64 * 1024);
        if (a->kind == ST_ASSET_SOURCE) {
            st_buf_puts(&b, "source: observed, produced outside the DAG");
            if (it->version < 0)
                st_buf_puts(&b, " (no table yet)");
            it->why = st_buf_take(&b);
            continue;
        }
        int64_t last_ok = oh_last_ok_ms(o, a->key);
        if (last_ok < 0 && it->version < 0)
            st_buf_puts(&b, "never materialized");
        else if (last_ok < 0)
            st_buf_puts(&b, "table exists but no run recorded");
        for (size_t j = 0; j < d->n_deps[i]; j++) {
            size_t k = d->deps[i][j];
            int64_t seen = oh_input_stamp(o, a->key, d->a[k]->key);
            if (last_ok >= 0 && stamp[k] >= 0 && seen != stamp[k])
                st_buf_printf(&b, "%supstream %s has a newer version", b.len ? "; " : "",
                              d->a[k]->key);
        }
        if (a->schedule) {
            st_cron c;
            int64_t next = 0;
            if (st_cron_parse(a->schedule, &c, NULL) == ST_OK && last_ok >= 0 &&
                st_cron_next(&c, last_ok, &next, NULL) == ST_OK && next <= now_ms)
                st_buf_printf(&b, "%sschedule due (%s)", b.len ? "; " : "", a->schedule);
        }
        if (direct[i])
            st_buf_printf(&b, "%sselected explicitly", b.len ? "; " : "");
        if (!b.len)
            st_buf_puts(&b, select ? "in the selection (up to date)" : "up to date (runs with the DAG)");
        it->why = st_buf_take(&b);
        if (!it->why)
            rc = st_fail(err, ST_ERR_NOMEM, "plan");
    }
    st_free(sel);
    st_free(direct);
    st_free(stamp);
    if (rc) {
        st_plan_free(p);
        return rc;
    }
    *out = p;
    return ST_OK;
}

static const char *kind_word(st_asset_kind k)
{
    switch (k) {
    case ST_ASSET_SOURCE: return "source";
    case ST_ASSET_EXTRACT: return "extract";
    case ST_ASSET_SILVER: return "silver";
    case ST_ASSET_GOLD: return "gold";
    case ST_ASSET_CUSTOM: return "custom";
    }
    return "?";
}

void st_plan_print(const st_plan *p, const st_dag *d, FILE *f)
{
    size_t n_run = 0;
    for (size_t i = 0; i < p->n; i++) {
        const st_plan_item *it = &p->items[i];
        const st_asset_def *a = it->asset;
        n_run += it->run;
        char ver[24];
        if (it->version >= 0)
            snprintf(ver, sizeof ver, "v%lld", (long long)it->version);
        else
            snprintf(ver, sizeof ver, "-");
        fprintf(f, "%3zu. %-8s %-40s %-7s %-6s %s\n", i + 1, it->run ? "run" : "observe", a->key,
                kind_word(a->kind), ver, it->why ? it->why : "");
        long idx = st_dag_find(d, a->key);
        if (idx >= 0 && d->n_deps[idx]) {
            fprintf(f, "     %-8s <- ", "");
            for (size_t j = 0; j < d->n_deps[idx]; j++)
                fprintf(f, "%s%s", j ? ", " : "", d->a[d->deps[idx][j]]->key);
            fprintf(f, "\n");
        }
        if (a->schedule || a->on_upstream || a->part != ST_PART_NONE || a->n_checks) {
            fprintf(f, "     %-8s   ", "");
            if (a->schedule)
                fprintf(f, " schedule %s", a->schedule);
            if (a->on_upstream)
                fprintf(f, " runs on upstream change");
            if (a->part != ST_PART_NONE)
                fprintf(f, " partitioned by %s (%s)",
                        a->part == ST_PART_DAY ? "day" : a->part == ST_PART_MONTH ? "month" : "value",
                        a->part_column);
            if (a->n_checks)
                fprintf(f, " %zu check(s)", a->n_checks);
            fprintf(f, "\n");
        }
    }
    fprintf(f, "\n%zu asset(s) selected, %zu would run, %zu observed\n", p->n, n_run, p->n - n_run);
}
