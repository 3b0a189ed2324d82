/*
 * powerbi.c - a Power BI semantic model (TMDL) for the gold star schema.
 *
 * Tables are the fact_* and dim_* Delta tables under <lake>/gold, each an
 * import partition reading the Delta folder with DeltaLake.Table; column
 * types come from the tables themselves.  Relationships follow the naming
 * the gold models keep: a fact's <x>_sk / <x>_code / date_key column points
 * to the dimension holding the same column.  Facts with a timestamp column
 * get RangeStart/RangeEnd filtering and an incremental refresh policy, so
 * Power BI refreshes only recent months (the tables are partitioned by
 * month, so each refresh reads only those partitions' files).
 */
#include "strata/gold.h"

#include "strata/delta.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct col {
    char *name, *type;
} col;

typedef struct tbl {
    char *name;
    col *cols;
    size_t n;
    bool fact;
    char *ts_col;  /* first TIMESTAMP column of a fact, for incremental refresh */
} tbl;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *tmdl_type(const char *duck)
{
    if (!strncmp(duck, "DECIMAL", 7))
        return "decimal";
    if (!strcmp(duck, "DOUBLE") || !strcmp(duck, "FLOAT"))
        return "double";
    if (strstr(duck, "INT"))
        return "int64";
    if (!strcmp(duck, "BOOLEAN"))
        return "boolean";
    if (!strncmp(duck, "TIMESTAMP", 9) || !strcmp(duck, "DATE"))
        return "dateTime";
    return "string";
}

/* Quotes a TMDL object name when it is not a plain identifier. */
static void tname(st_buf *b, const char *s)
{
    bool plain = true;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            plain = false;
    if (plain) {
        st_buf_puts(b, s);
        return;
    }
    st_buf_putc(b, '\'');
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            st_buf_putc(b, '\'');
        st_buf_putc(b, *p);
    }
    st_buf_putc(b, '\'');
}

static st_rc load_table(st_engine *eng, const char *lake, const char *name, tbl *t, st_err *err)
{
    char *rel = st_sprintf("gold/%s", name);
    char *path = st_path_join(lake, rel);
    st_delta_snapshot *snap = NULL;
    duckdb_result r;
    bool have_r = false;
    st_rc rc = st_delta_snapshot_load(eng, path, -1, &snap, err);
    if (rc)
        st_err_ctx(err, "power bi model: table %s", path);
    rc = rc ? rc : st_delta_register_view(eng, "st_pbi_t", snap, err);
    st_delta_snapshot_free(snap);
    rc = rc ? rc : st_engine_query(eng, "SELECT column_name, data_type FROM duckdb_columns() "
                                        "WHERE table_name = 'st_pbi_t' ORDER BY column_index",
                                   &r, err);
    have_r = rc == ST_OK;
    if (!rc) {
        idx_t n = duckdb_row_count(&r);
        t->cols = st_calloc(n ? n : 1, sizeof *t->cols);
        t->name = st_strdup(name);
        t->fact = !strncmp(name, "fact_", 5);
        if (!t->cols || !t->name)
            rc = st_fail(err, ST_ERR_NOMEM, "power bi model");
        for (idx_t i = 0; !rc && i < n; i++) {
            char *cn = duckdb_value_varchar(&r, 0, i), *ct = duckdb_value_varchar(&r, 1, i);
            t->cols[t->n].name = st_strdup(cn);
            t->cols[t->n].type = st_strdup(ct);
            duckdb_free(cn);
            duckdb_free(ct);
            if (t->fact && !t->ts_col && !strncmp(t->cols[t->n].type, "TIMESTAMP", 9))
                t->ts_col = st_strdup(t->cols[t->n].name);
            t->n++;
        }
    }
    if (have_r)
        duckdb_destroy_result(&r);
    st_free(rel);
    st_free(path);
    return rc;
}

static void tbl_clear(tbl *t)
{
    for (size_t i = 0; i < t->n; i++) {
        st_free(t->cols[i].name);
        st_free(t->cols[i].type);
    }
    st_free(t->cols);
    st_free(t->name);
    st_free(t->ts_col);
}

static bool has_col(const tbl *t, const char *c)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->cols[i].name, c))
            return true;
    return false;
}

static bool is_key_col(const char *c)
{
    size_t n = strlen(c);
    return !strcmp(c, "date_key") || (n > 3 && !strcmp(c + n - 3, "_sk")) ||
           (n > 5 && !strcmp(c + n - 5, "_code"));
}

static void write_table(st_buf *b, const tbl *t)
{
    st_buf_puts(b, "table ");
    tname(b, t->name);
    st_buf_printf(b, "\n\tlineageTag: strata-%s\n\n", t->name);
    for (size_t i = 0; i < t->n; i++) {
        const char *ty = tmdl_type(t->cols[i].type);
        st_buf_puts(b, "\tcolumn ");
        tname(b, t->cols[i].name);
        st_buf_printf(b, "\n\t\tdataType: %s\n", ty);
        if (!strcmp(ty, "decimal") || !strcmp(ty, "double"))
            st_buf_puts(b, "\t\tformatString: #,0.00\n\t\tsummarizeBy: sum\n");
        else
            st_buf_puts(b, "\t\tsummarizeBy: none\n");
        if (is_key_col(t->cols[i].name) && (t->fact || strcmp(t->cols[i].name, "date_key")))
            st_buf_puts(b, "\t\tisHidden\n");
        st_buf_printf(b, "\t\tlineageTag: strata-%s-%s\n\t\tsourceColumn: %s\n\n", t->name,
                      t->cols[i].name, t->cols[i].name);
    }
    if (t->fact && has_col(t, "amount_eur")) {
        st_buf_printf(b, "\tmeasure 'Amount EUR' = SUM(%s[amount_eur])\n\t\tformatString: "
                         "#,0.00\n\n", t->name);
        st_buf_printf(b, "\tmeasure 'Transactions' = COUNTROWS(%s)\n\t\tformatString: #,0\n\n",
                      t->name);
        st_buf_printf(b, "\tmeasure 'Average Amount EUR' = DIVIDE([Amount EUR], "
                         "[Transactions])\n\t\tformatString: #,0.00\n\n");
        if (has_col(t, "customer_sk"))
            st_buf_printf(b, "\tmeasure 'Active Customers' = DISTINCTCOUNT(%s[customer_sk])\n"
                             "\t\tformatString: #,0\n\n", t->name);
    }
    st_buf_puts(b, "\tpartition ");
    tname(b, t->name);
    st_buf_puts(b, " = m\n\t\tmode: import\n\t\tsource =\n\t\t\t\tlet\n");
    st_buf_printf(b, "\t\t\t\t    Source = DeltaLake.Table(Folder.Files(LakePath & \"/gold/%s\"))",
                  t->name);
    if (t->fact && t->ts_col) {
        st_buf_printf(b, ",\n\t\t\t\t    Filtered = Table.SelectRows(Source, each [%s] >= "
                         "RangeStart and [%s] < RangeEnd)\n\t\t\t\tin\n\t\t\t\t    Filtered\n\n",
                      t->ts_col, t->ts_col);
        st_buf_printf(b, "\trefreshPolicy\n\t\tpolicyType: basic\n\t\trollingWindowGranularity: "
                         "year\n\t\trollingWindowPeriods: 3\n\t\tincrementalGranularity: month\n"
                         "\t\tincrementalPeriods: 3\n\t\tsourceExpression =\n\t\t\t\tlet\n"
                         "\t\t\t\t    Source = DeltaLake.Table(Folder.Files(LakePath & "
                         "\"/gold/%s\")),\n\t\t\t\t    Filtered = Table.SelectRows(Source, each "
                         "[%s] >= RangeStart and [%s] < RangeEnd)\n\t\t\t\tin\n\t\t\t\t    "
                         "Filtered\n\n", t->name, t->ts_col, t->ts_col);
    } else {
        st_buf_puts(b, "\n\t\t\t\tin\n\t\t\t\t    Source\n\n");
    }
}

static st_rc put(const char *dir, const char *name, st_buf *b, st_err *err)
{
    char *path = st_path_join(dir, name);
    st_rc rc = path ? st_file_write_atomic(path, b->data ? b->data : "", b->len, err)
                    : st_fail(err, ST_ERR_NOMEM, "power bi model");
    st_free(path);
    st_buf_reset(b);
    return rc;
}

st_rc st_gold_powerbi(st_engine *eng, const char *lake, const char *out_dir,
                      size_t *tables_written, st_err *err)
{
    st_rc rc = ST_OK;
    char *gold = st_path_join(lake, "gold");
    char *def = st_path_join(out_dir, "definition");
    char *tdir = def ? st_path_join(def, "tables") : NULL;
    char **names = NULL;
    size_t n_names = 0;
    tbl *tables = NULL;
    size_t n_tables = 0;
    st_buf b;
    st_buf_init(&b, 0);
    DIR *d = gold ? opendir(gold) : NULL;
    if (!d) {
        rc = st_fail_errno(err, ST_ERR_NOTFOUND, "power bi model: no gold tables in %s",
                           gold ? gold : lake);
        goto fail;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "fact_", 5) && strncmp(e->d_name, "dim_", 4))
            continue;
        char **nn = st_realloc(names, (n_names + 1) * sizeof *names);
        if (!nn) {
            rc = st_fail(err, ST_ERR_NOMEM, "power bi model");
            break;
        }
        names = nn;
        names[n_names++] = st_strdup(e->d_name);
    }
    closedir(d);
    if (rc)
        goto fail;
    if (!n_names) {
        rc = st_fail(err, ST_ERR_NOTFOUND, "power bi model: no fact_* or dim_* table in %s", gold);
        goto fail;
    }
    qsort(names, n_names, sizeof *names, cmp_str);
    tables = st_calloc(n_names, sizeof *tables);
    if (!tables) {
        rc = st_fail(err, ST_ERR_NOMEM, "power bi model");
        goto fail;
    }
    for (size_t i = 0; i < n_names && !rc; i++, n_tables++)
        rc = load_table(eng, lake, names[i], &tables[i], err);
    rc = rc ? rc : st_mkdirs(tdir, err);
    if (rc)
        goto fail;

    st_buf_puts(&b, "database\n\tcompatibilityLevel: 1600\n\n");
    rc = put(def, "database.tmdl", &b, err);
    st_buf_puts(&b, "model Model\n\tculture: en-US\n\tdefaultPowerBIDataSourceVersion: "
                    "powerBI_V3\n\tdiscourageImplicitMeasures\n\n");
    for (size_t i = 0; i < n_tables; i++) {
        st_buf_puts(&b, "ref table ");
        tname(&b, tables[i].name);
        st_buf_putc(&b, '\n');
    }
    rc = rc ? rc : put(def, "model.tmdl", &b, err);
    char *lake_abs = realpath(lake, NULL);
    st_buf_puts(&b, "/// Folder of the Strata lake (local path or a OneLake/ADLS folder URL)\n"
                    "expression LakePath = ");
    st_buf_json_str(&b, lake_abs ? lake_abs : lake);
    free(lake_abs);  /* realpath allocates with malloc */
    st_buf_puts(&b, " meta [IsParameterQuery=true, Type=\"Text\", IsParameterQueryRequired=true]\n"
                    "\tlineageTag: strata-lakepath\n\n"
                    "/// Incremental refresh window start (Power BI sets it per partition)\n"
                    "expression RangeStart = #datetime(2024, 1, 1, 0, 0, 0) meta "
                    "[IsParameterQuery=true, Type=\"DateTime\", IsParameterQueryRequired=true]\n"
                    "\tlineageTag: strata-rangestart\n\n"
                    "/// Incremental refresh window end (exclusive)\n"
                    "expression RangeEnd = #datetime(2030, 1, 1, 0, 0, 0) meta "
                    "[IsParameterQuery=true, Type=\"DateTime\", IsParameterQueryRequired=true]\n"
                    "\tlineageTag: strata-rangeend\n\n");
    rc = rc ? rc : put(def, "expressions.tmdl", &b, err);
    /* relationships: fact key column -> the dimension holding that column */
    for (size_t i = 0; i < n_tables; i++) {
        if (!tables[i].fact)
            continue;
        for (size_t c = 0; c < tables[i].n; c++) {
            const char *cn = tables[i].cols[c].name;
            if (!is_key_col(cn))
                continue;
            for (size_t j = 0; j < n_tables; j++) {
                if (tables[j].fact || !tables[j].n || strcmp(tables[j].cols[0].name, cn))
                    continue;
                st_buf_printf(&b, "relationship %s_%s\n\tfromColumn: ", tables[i].name, cn);
                tname(&b, tables[i].name);
                st_buf_printf(&b, ".%s\n\ttoColumn: ", cn);
                tname(&b, tables[j].name);
                st_buf_printf(&b, ".%s\n\n", cn);
            }
        }
    }
    rc = rc ? rc : put(def, "relationships.tmdl", &b, err);
    for (size_t i = 0; i < n_tables && !rc; i++) {
        write_table(&b, &tables[i]);
        char *fn = st_sprintf("%s.tmdl", tables[i].name);
        rc = put(tdir, fn, &b, err);
        st_free(fn);
    }
    if (!rc && tables_written)
        *tables_written = n_tables;
fail:
    for (size_t i = 0; i < n_tables; i++)
        tbl_clear(&tables[i]);
    st_free(tables);
    for (size_t i = 0; i < n_names; i++)
        st_free(names[i]);
    st_free(names);
    st_buf_free(&b);
    st_free(gold);
    st_free(def);
    st_free(tdir);
    return rc;
}
