/*
 * dag.c - the asset graph of a project: dependency resolution (unqualified
 * ref names, implicit bronze sources), cycle detection and a stable
 * topological order (Kahn's algorithm, ties broken by declaration order).
 * Selection over it is select.c; running it is run.c.
 */
#include "strata/orch.h"

#include <string.h>

void st_dag_free(st_dag *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        if (d->deps)
            st_free(d->deps[i]);
        if (d->kids)
            st_free(d->kids[i]);
    }
    st_free(d->deps);
    st_free(d->kids);
    st_free(d->n_deps);
    st_free(d->n_kids);
    st_free(d->a);
    st_map_free(d->index);
    for (size_t i = 0; i < d->n_implicit; i++)
        st_asset_def_free(d->implicit[i]);
    st_free(d->implicit);
    st_free(d);
}

long st_dag_find(const st_dag *d, const char *key)
{
    void *v = st_map_get(d->index, key);
    return v ? (long)((uintptr_t)v - 1) : -1;
}

/* The asset a dependency name refers to: the exact key, else the unique
 * asset whose table name is `name` (gold, then silver, then bronze). */
static const st_asset_def *resolve_dep(const st_project *p, st_asset_def **extra, size_t n_extra,
                                       const char *name)
{
    for (size_t i = 0; i < p->n_assets; i++)
        if (!strcmp(p->assets[i]->key, name))
            return p->assets[i];
    for (size_t i = 0; i < n_extra; i++)
        if (!strcmp(extra[i]->key, name))
            return extra[i];
    if (strchr(name, '.'))
        return NULL;
    static const char *const order[] = {"gold", "silver", "bronze"};
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < p->n_assets; i++)
            if (!strcmp(p->assets[i]->layer, order[l]) && !strcmp(p->assets[i]->name, name))
                return p->assets[i];
    return NULL;
}

/* The table a relationships check reads, or NULL for other kinds. */
static const char *check_target(const st_asset_def *a, size_t k)
{
    return a->checks[k].kind == ST_CHECK_RELATIONSHIPS ? a->checks[k].to : NULL;
}

static st_rc add_implicit(st_dag *d, const char *key, st_err *err)
{
    st_asset_def *a = st_calloc(1, sizeof *a);
    st_asset_def **na = st_realloc(d->implicit, (d->n_implicit + 1) * sizeof *na);
    if (na)
        d->implicit = na;
    const char *dot = strchr(key, '.');
    if (a) {
        a->key = st_strdup(key);
        a->layer = st_strndup(key, (size_t)(dot - key));
        a->name = st_strdup(dot + 1);
        a->file = st_strdup("(implicit)");
        a->description = st_strdup("input declared nowhere in the project: observed only");
        a->kind = ST_ASSET_SOURCE;
        a->retries = -1;
    }
    if (!a || !na || !a->key || !a->layer || !a->name || !a->file || !a->description) {
        st_asset_def_free(a);
        return st_fail(err, ST_ERR_NOMEM, "dag");
    }
    d->implicit[d->n_implicit++] = a;
    return ST_OK;
}

st_rc st_dag_build(const st_project *p, st_dag **out, st_err *err)
{
    st_dag *d = st_calloc(1, sizeof *d);
    const st_asset_def **all = NULL;
    size_t **deps = NULL, *n_deps = NULL, *indeg = NULL, *order = NULL;
    st_map *pos = st_map_new();
    st_rc rc = d && pos ? ST_OK : st_fail(err, ST_ERR_NOMEM, "dag");
    if (rc)
        goto fail;
    /* implicit bronze sources first, so every dep resolves; the target of a
     * relationships check is an input too: the check reads it, so it must be
     * built first and a failure upstream must stop the check's table */
    for (size_t i = 0; rc == ST_OK && i < p->n_assets; i++) {
        const st_asset_def *a = p->assets[i];
        for (size_t j = 0; rc == ST_OK && j < a->n_deps + a->n_checks; j++) {
            const char *dep = j < a->n_deps ? a->deps[j] : check_target(a, j - a->n_deps);
            if (!dep || resolve_dep(p, d->implicit, d->n_implicit, dep))
                continue;
            if (!strncmp(dep, "bronze.", 7) && dep[7])
                rc = add_implicit(d, dep, err);
            else if (j < a->n_deps)
                rc = st_fail(err, ST_ERR_NOTFOUND, "%s:%d: %s reads %s, which no model, entity or "
                             "source declares", a->file, a->line, a->key, dep);
            else
                rc = st_fail(err, ST_ERR_NOTFOUND, "%s:%d: check %s of %s refers to %s, which no "
                             "model, entity or source declares", a->checks[j - a->n_deps].file,
                             a->checks[j - a->n_deps].line, a->checks[j - a->n_deps].name, a->key, dep);
        }
    }
    if (rc)
        goto fail;
    size_t n = p->n_assets + d->n_implicit;
    all = st_calloc(n + 1, sizeof *all);
    deps = st_calloc(n + 1, sizeof *deps);
    n_deps = st_calloc(n + 1, sizeof *n_deps);
    indeg = st_calloc(n + 1, sizeof *indeg);
    order = st_calloc(n + 1, sizeof *order);
    if (!all || !deps || !n_deps || !indeg || !order) {
        rc = st_fail(err, ST_ERR_NOMEM, "dag");
        goto fail;
    }
    for (size_t i = 0; i < d->n_implicit; i++)
        all[i] = d->implicit[i];
    for (size_t i = 0; i < p->n_assets; i++)
        all[d->n_implicit + i] = p->assets[i];
    for (size_t i = 0; rc == ST_OK && i < n; i++)
        rc = st_map_put(pos, all[i]->key, (void *)(uintptr_t)(i + 1), NULL);
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        deps[i] = st_calloc(all[i]->n_deps + all[i]->n_checks + 1, sizeof **deps);
        if (!deps[i]) {
            rc = st_fail(err, ST_ERR_NOMEM, "dag");
            break;
        }
        for (size_t j = 0; j < all[i]->n_deps + all[i]->n_checks; j++) {
            bool is_check = j >= all[i]->n_deps;
            const char *dep = is_check ? check_target(all[i], j - all[i]->n_deps) : all[i]->deps[j];
            if (!dep)
                continue;
            const st_asset_def *t = resolve_dep(p, d->implicit, d->n_implicit, dep);
            size_t ti = (size_t)(uintptr_t)st_map_get(pos, t->key) - 1;
            if (ti == i && is_check)
                continue;   /* a self-reference (parent_id -> id) reads the table itself */
            if (ti == i) {
                rc = st_fail(err, ST_ERR_INVALID, "%s:%d: %s reads itself (use {{ this }})",
                             all[i]->file, all[i]->line, all[i]->key);
                break;
            }
            bool dup = false;
            for (size_t k = 0; k < n_deps[i]; k++)
                dup = dup || deps[i][k] == ti;
            if (!dup) {
                deps[i][n_deps[i]++] = ti;
                indeg[i]++;
            }
        }
    }
    if (rc)
        goto fail;
    /* Kahn's algorithm with a FIFO ready list: O(assets + edges) */
    size_t n_done = 0;
    size_t *ready = st_calloc(n + 1, sizeof *ready);
    size_t **kids_tmp = st_calloc(n + 1, sizeof *kids_tmp);
    size_t *n_kids_tmp = st_calloc(n + 1, sizeof *n_kids_tmp);
    if (!ready || !kids_tmp || !n_kids_tmp) {
        st_free(ready);
        st_free(kids_tmp);
        st_free(n_kids_tmp);
        rc = st_fail(err, ST_ERR_NOMEM, "dag");
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n_deps[i]; j++)
            n_kids_tmp[deps[i][j]]++;
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        kids_tmp[i] = st_calloc(n_kids_tmp[i] + 1, sizeof **kids_tmp);
        if (!kids_tmp[i])
            rc = st_fail(err, ST_ERR_NOMEM, "dag");
        n_kids_tmp[i] = 0;
    }
    for (size_t i = 0; rc == ST_OK && i < n; i++)
        for (size_t j = 0; j < n_deps[i]; j++)
            kids_tmp[deps[i][j]][n_kids_tmp[deps[i][j]]++] = i;
    size_t n_ready = 0;
    for (size_t i = 0; rc == ST_OK && i < n; i++)
        if (!indeg[i])
            ready[n_ready++] = i;
    size_t head = 0;
    while (rc == ST_OK && head < n_ready) {
        size_t i = ready[head++];
        order[n_done++] = i;
        for (size_t k = 0; k < n_kids_tmp[i]; k++)
            if (--indeg[kids_tmp[i][k]] == 0)
                ready[n_ready++] = kids_tmp[i][k];
    }
    if (rc == ST_OK && n_done < n) {
        st_buf b;
        st_buf_init(&b, 1024);
        for (size_t i = 0; i < n; i++)
            if (indeg[i])
                st_buf_printf(&b, "%s%s", b.len ? ", " : "", all[i]->key);
        rc = st_fail(err, ST_ERR_INVALID, "dependency cycle among: %s", b.data ? b.data : "?");
        st_buf_free(&b);
    }
    for (size_t i = 0; i < n; i++)
        st_free(kids_tmp[i]);
    st_free(kids_tmp);
    st_free(n_kids_tmp);
    st_free(ready);
    if (rc)
        goto fail;
    /* renumber into topological order */
    size_t *rank = indeg;  /* reuse: rank[old] = new */
    for (size_t k = 0; k < n; k++)
        rank[order[k]] = k;
    d->n = n;
    d->a = st_calloc(n + 1, sizeof *d->a);
    d->deps = st_calloc(n + 1, sizeof *d->deps);
    d->n_deps = st_calloc(n + 1, sizeof *d->n_deps);
    d->kids = st_calloc(n + 1, sizeof *d->kids);
    d->n_kids = st_calloc(n + 1, sizeof *d->n_kids);
    d->index = st_map_new();
    if (!d->a || !d->deps || !d->n_deps || !d->kids || !d->n_kids || !d->index) {
        rc = st_fail(err, ST_ERR_NOMEM, "dag");
        goto fail;
    }
    for (size_t k = 0; k < n; k++) {
        size_t old = order[k];
        d->a[k] = all[old];
        d->deps[k] = deps[old];
        deps[old] = NULL;
        d->n_deps[k] = n_deps[old];
        for (size_t j = 0; j < d->n_deps[k]; j++)
            d->deps[k][j] = rank[d->deps[k][j]];
        rc = rc ? rc : st_map_put(d->index, d->a[k]->key, (void *)(uintptr_t)(k + 1), NULL);
    }
    for (size_t k = 0; k < n; k++)
        for (size_t j = 0; j < d->n_deps[k]; j++)
            d->n_kids[d->deps[k][j]]++;
    for (size_t k = 0; rc == ST_OK && k < n; k++) {
        d->kids[k] = st_calloc(d->n_kids[k] + 1, sizeof **d->kids);
        if (!d->kids[k])
            rc = st_fail(err, ST_ERR_NOMEM, "dag");
        d->n_kids[k] = 0;
    }
    for (size_t k = 0; rc == ST_OK && k < n; k++)
        for (size_t j = 0; j < d->n_deps[k]; j++)
            d->kids[d->deps[k][j]][d->n_kids[d->deps[k][j]]++] = k;
    if (rc)
        goto fail;
    st_free(all);
    st_free(deps);
    st_free(n_deps);
    st_free(indeg);
    st_free(order);
    st_map_free(pos);
    *out = d;
    return ST_OK;
fail:
    if (deps)
        for (size_t i = 0; i < p->n_assets + (d ? d->n_implicit : 0); i++)
            st_free(deps[i]);
    st_free(all);
    st_free(deps);
    st_free(n_deps);
    st_free(indeg);
    st_free(order);
    st_map_free(pos);
    st_dag_free(d);
    return rc;
}
