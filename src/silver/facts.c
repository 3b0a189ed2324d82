/*
 * facts.c - silver facts: validated and conformed rows of a bronze table.
 * Country and currency codes are trimmed, upper-cased and checked against
 * ISO 3166-1 alpha-2 / ISO 4217, amounts are cast to declared decimals, and
 * each row is linked to the dimension version valid at its time by an ASOF
 * join (giving <dimension>_sk).  Failing rows go to silver.<fact>__quarantine
 * with the reasons.  Incremental like dimensions (merge.c): only bronze files
 * added since the recorded version, txn "silver.<fact>" on both tables.
 */
#include "silver/silver_int.h"

#include "strata/delta.h"

#include <string.h>

/* ISO 3166-1 alpha-2, officially assigned codes. */
static const char g_countries[] =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ "
    "BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM "
    "DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS "
    "GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ "
    "MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM "
    "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV "
    "SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
    "VN VU WF WS YE YT ZA ZM ZW";

/* ISO 4217 active codes, funds and precious metals; not XTS (testing) or
 * XXX (no currency). */
static const char g_currencies[] =
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD "
    "BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP "
    "DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR "
    "IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD "
    "MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB "
    "PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD "
    "SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS "
    "VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER "
    "ZAR ZMW ZWG ZWL";

static bool in_codes(const char *list, const char *code, size_t len)
{
    if (!code || strlen(code) != len)
        return false;
    for (const char *p = list; *p; p += len + (p[len] ? 1 : 0))
        if (!strncmp(p, code, len))
            return true;
    return false;
}

bool st_silver_iso_country(const char *code) { return in_codes(g_countries, code, 2); }
bool st_silver_iso_currency(const char *code) { return in_codes(g_currencies, code, 3); }

/* ---------------------------------------------------------------- config */

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        st_free(v[i]);
    st_free(v);
}

void st_silver_fact_free(st_silver_fact *f)
{
    if (!f)
        return;
    strv_free(f->amounts, f->n_amounts);
    strv_free(f->amount_types, f->n_amounts);
    strv_free(f->fact_cols, f->n_link);
    strv_free(f->dim_cols, f->n_link);
    st_free(f->name);
    st_free(f->from);
    st_free(f->time);
    st_free(f->country);
    st_free(f->currency);
    st_free(f->dimension);
    st_free(f->file);
    st_free(f);
}

/* Reads a map of scalars into two parallel arrays. */
static st_rc get_pairs(const st_cfg *map, char ***keys, char ***vals, size_t *n, st_err *err)
{
    size_t len = st_cfg_len(map);
    *keys = st_calloc(len + 1, sizeof **keys);
    *vals = st_calloc(len + 1, sizeof **vals);
    if (!*keys || !*vals)
        return st_fail(err, ST_ERR_NOMEM, "silver fact");
    for (size_t i = 0; i < len; i++) {
        const char *v = st_cfg_scalar(st_cfg_at(map, i));
        if (!v || !*v)
            return st_cfg_fail(st_cfg_at(map, i), err, ST_ERR_INVALID, "expected a scalar");
        (*keys)[i] = st_strdup(st_cfg_key_at(map, i));
        (*vals)[i] = st_strdup(v);
        if (!(*keys)[i] || !(*vals)[i])
            return st_fail(err, ST_ERR_NOMEM, "silver fact");
        (*n)++;
    }
    return ST_OK;
}

st_rc st_silver_fact_parse(const st_cfg *node, const char *name, st_silver_fact **out,
                           st_err *err)
{
    static const char *const allowed[] = {"kind",    "from", "time", "country", "currency",
                                          "amounts", "link", "description", NULL};
    static const char *const link_keys[] = {"dimension", "on", NULL};
    if (!node || st_cfg_kind_of(node) != ST_CFG_MAP)
        return node ? st_cfg_fail(node, err, ST_ERR_INVALID, "silver fact %s: expected a map", name)
                    : st_fail(err, ST_ERR_INVALID, "silver fact %s: empty declaration", name);
    st_rc rc = st_cfg_check_keys(node, allowed, err);
    if (rc)
        return rc;
    st_silver_fact *f = st_calloc(1, sizeof *f);
    if (!f)
        return st_fail(err, ST_ERR_NOMEM, "silver fact %s", name);
    const char *from = NULL, *time = NULL, *country = NULL, *currency = NULL;
    rc = st_cfg_get_str(node, "from", NULL, &from, err);
    rc = rc ? rc : st_cfg_get_str(node, "time", NULL, &time, err);
    rc = rc ? rc : st_cfg_get_str(node, "country", NULL, &country, err);
    rc = rc ? rc : st_cfg_get_str(node, "currency", NULL, &currency, err);
    if (rc)
        goto fail;
    if (!from || !*from || !time || !*time) {
        rc = st_cfg_fail(node, err, ST_ERR_INVALID, "silver fact %s: 'from' and 'time' are required",
                         name);
        goto fail;
    }
    f->name = st_strdup(name);
    f->from = st_strdup(from);
    f->time = st_strdup(time);
    f->country = country && *country ? st_strdup(country) : NULL;
    f->currency = currency && *currency ? st_strdup(currency) : NULL;
    f->file = st_strdup(st_cfg_file(node) ? st_cfg_file(node) : "?");
    f->line = st_cfg_line(node);
    const st_cfg *am = st_cfg_get(node, "amounts");
    if (am && st_cfg_kind_of(am) != ST_CFG_MAP) {
        rc = st_cfg_fail(am, err, ST_ERR_INVALID, "expected a map of column: decimal type");
        goto fail;
    }
    if (am)
        rc = get_pairs(am, &f->amounts, &f->amount_types, &f->n_amounts, err);
    const st_cfg *link = st_cfg_get(node, "link");
    if (rc == ST_OK && link) {
        const char *dim = NULL;
        const st_cfg *on = NULL;
        rc = st_cfg_kind_of(link) == ST_CFG_MAP
                 ? st_cfg_check_keys(link, link_keys, err)
                 : st_cfg_fail(link, err, ST_ERR_INVALID, "expected {dimension: ..., on: {...}}");
        rc = rc ? rc : st_cfg_get_str(link, "dimension", NULL, &dim, err);
        on = rc ? NULL : st_cfg_get(link, "on");
        if (rc == ST_OK && (!dim || !on || st_cfg_kind_of(on) != ST_CFG_MAP || !st_cfg_len(on)))
            rc = st_cfg_fail(link, err, ST_ERR_INVALID,
                             "link needs 'dimension' and 'on: {fact_column: dimension_column}'");
        if (rc == ST_OK) {
            f->dimension = st_strdup(dim);
            rc = get_pairs(on, &f->fact_cols, &f->dim_cols, &f->n_link, err);
        }
    }
    if (rc)
        goto fail;
    if (!f->name || !f->from || !f->time || !f->file || (link && !f->dimension)) {
        rc = st_fail(err, ST_ERR_NOMEM, "silver fact %s", name);
        goto fail;
    }
    *out = f;
    return ST_OK;
fail:
    st_silver_fact_free(f);
    return rc;
}

/* ---------------------------------------------------------------- run */

/* Appends the rows of sql to the Delta table at path (created from the
 * query's columns when absent), recording txn(app_id, app_version). */
static st_rc append(st_engine *eng, const char *path, const char *sql, const char *app_id,
                    int64_t app_version, const char *name, st_err *err)
{
    int64_t latest = -1;
    st_rc rc = st_delta_latest_version(path, &latest, err);
    if (rc)
        return rc;
    if (latest < 0) {
        duckdb_result r;
        char *q = st_sprintf("SELECT * FROM (%s) LIMIT 0", sql);
        rc = q ? st_engine_query(eng, q, &r, err) : st_fail(err, ST_ERR_NOMEM, "%s", path);
        st_free(q);
        if (rc)
            return rc;
        idx_t n = duckdb_column_count(&r);
        st_delta_schema *s = st_calloc(1, sizeof *s);
        if (s)
            s->fields = st_calloc(n + 1, sizeof *s->fields);
        for (idx_t i = 0; s && s->fields && rc == ST_OK && i < n; i++) {
            duckdb_logical_type lt = duckdb_column_logical_type(&r, i);
            rc = st_delta_type_from_duckdb(lt, &s->fields[i].type, err);
            duckdb_destroy_logical_type(&lt);
            if (rc)
                break;
            s->n_fields++;
            s->fields[i].name = st_strdup(duckdb_column_name(&r, i));
            s->fields[i].metadata_json = st_strdup("{}");
            s->fields[i].nullable = true;
        }
        duckdb_destroy_result(&r);
        if (rc == ST_OK && (!s || !s->fields))
            rc = st_fail(err, ST_ERR_NOMEM, "%s", path);
        st_delta_create_opts o = {0};
        o.name = name;
        rc = rc ? rc : st_mkdirs(path, err);
        rc = rc ? rc : st_delta_create(path, s, &o, err);
        st_delta_schema_free(s);
        if (rc)
            return rc;
    }
    st_delta_write_opts wo = {0};
    wo.mode = ST_DELTA_APPEND;
    wo.app_id = app_id;
    wo.app_version = app_version;
    wo.operation = "WRITE";
    return st_delta_write(eng, path, sql, &wo, NULL, err);
}

st_rc st_silver_fact_run(st_engine *eng, const char *lake_dir, const st_silver_fact *f,
                         st_silver_fact_stats *stats, st_err *err)
{
    st_silver_fact_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    char *bronze = st_silver_table_path(lake_dir, f->from);
    char *app = st_sprintf("silver.%s", f->name);
    char *qname = st_sprintf("silver.%s__quarantine", f->name);
    char *path = app ? st_silver_table_path(lake_dir, app) : NULL;
    char *qpath = qname ? st_silver_table_path(lake_dir, qname) : NULL;
    char *dname = f->dimension ? st_sprintf("silver.%s", f->dimension) : NULL;
    char *dpath = dname ? st_silver_table_path(lake_dir, dname) : NULL;
    char *sql = NULL;
    char uuid[37];
    st_uuid4(uuid);
    st_buf b, reason;
    st_buf_init(&b, 0);
    st_buf_init(&reason, 0);
    int64_t done_v = -1, bv = -1, qv = -1;
    st_rc rc = ST_OK;
    if (!bronze || !app || !qname || !path || !qpath || (f->dimension && !dpath)) {
        rc = st_fail(err, ST_ERR_NOMEM, "silver fact %s", f->name);
        goto done;
    }
    rc = scd_app_version(eng, path, app, &done_v, err);
    rc = rc ? rc : scd_app_version(eng, qpath, app, &qv, err);
    rc = rc ? rc : st_delta_latest_version(bronze, &bv, err);
    if (rc == ST_OK && bv < 0)
        rc = st_fail(err, ST_ERR_NOTFOUND, "bronze table %s does not exist", bronze);
    if (rc)
        goto done;
    stats->source_version = bv;
    if (done_v >= bv) {
        stats->skipped = true;
        goto done;
    }
    rc = scd_bronze_increment(eng, bronze, done_v, &sql, &bv, err);
    rc = rc ? rc : st_engine_execf(eng, err, "CREATE OR REPLACE TEMP TABLE _sf_in AS SELECT *, row_number() OVER () AS _sf_rid FROM (%s)",
                                   sql);
    if (rc)
        goto done;
    /* the code lists as tables, for the checks */
    rc = st_engine_execf(eng, err,
                         "CREATE OR REPLACE TEMP TABLE _sf_iso AS SELECT unnest(string_split('%s', "
                         "' ')) AS code, 'country' AS kind UNION ALL SELECT unnest(string_split('%s', "
                         "' ')), 'currency'",
                         g_countries, g_currencies);
    if (rc)
        goto done;
    if (dpath) {
        rc = st_silver_register_views(eng, dpath, "_sf_dim", err);
        if (rc) {
            st_err_ctx(err, "linking dimension %s", dname);
            goto done;
        }
    }
    /* conformed columns and the link, then the reasons */
    rc = st_buf_puts(&b, "CREATE OR REPLACE TEMP TABLE _sf_chk AS SELECT f.* REPLACE (");
    bool first = true;
    if (rc == ST_OK && f->country) {
        rc = st_buf_puts(&b, "upper(trim(CAST(f.");
        rc = rc ? rc : st_buf_sql_ident(&b, f->country);
        rc = rc ? rc : st_buf_puts(&b, " AS VARCHAR))) AS ");
        rc = rc ? rc : st_buf_sql_ident(&b, f->country);
        first = false;
    }
    if (rc == ST_OK && f->currency) {
        rc = st_buf_puts(&b, first ? "upper(trim(CAST(f." : ", upper(trim(CAST(f.");
        rc = rc ? rc : st_buf_sql_ident(&b, f->currency);
        rc = rc ? rc : st_buf_puts(&b, " AS VARCHAR))) AS ");
        rc = rc ? rc : st_buf_sql_ident(&b, f->currency);
        first = false;
    }
    for (size_t i = 0; rc == ST_OK && i < f->n_amounts; i++) {
        rc = st_buf_puts(&b, first ? "TRY_CAST(f." : ", TRY_CAST(f.");
        rc = rc ? rc : st_buf_sql_ident(&b, f->amounts[i]);
        rc = rc ? rc : st_buf_printf(&b, " AS %s) AS ", f->amount_types[i]);
        rc = rc ? rc : st_buf_sql_ident(&b, f->amounts[i]);
        first = false;
    }
    if (first)
        rc = rc ? rc : st_buf_puts(&b, "f.");
    if (first)
        rc = rc ? rc : st_buf_sql_ident(&b, f->time);
    if (first)
        rc = rc ? rc : st_buf_puts(&b, " AS ");
    if (first)
        rc = rc ? rc : st_buf_sql_ident(&b, f->time);
    rc = rc ? rc : st_buf_puts(&b, ")");
    if (dpath) {
        rc = rc ? rc : st_buf_printf(&b, ", CASE WHEN d._is_deleted THEN NULL ELSE d._sk END AS "
                                         "\"%s_sk\", d._sk IS NOT NULL AND NOT d._is_deleted AS _sf_linked",
                                     f->dimension);
    }
    rc = rc ? rc : st_buf_puts(&b, ", concat_ws('; '");
    /* a reason per failed check, naming the column and the value */
    if (f->country)
        rc = rc ? rc : st_buf_printf(&b, ", CASE WHEN upper(trim(CAST(f.\"%s\" AS VARCHAR))) NOT IN "
                                         "(SELECT code FROM _sf_iso WHERE kind = 'country') OR "
                                         "f.\"%s\" IS NULL THEN '%s ''' || coalesce(CAST(f.\"%s\" "
                                         "AS VARCHAR), 'NULL') || ''' is not an ISO 3166-1 "
                                         "alpha-2 code' END",
                                     f->country, f->country, f->country, f->country);
    if (f->currency)
        rc = rc ? rc : st_buf_printf(&b, ", CASE WHEN upper(trim(CAST(f.\"%s\" AS VARCHAR))) NOT IN "
                                         "(SELECT code FROM _sf_iso WHERE kind = 'currency') OR "
                                         "f.\"%s\" IS NULL THEN '%s ''' || coalesce(CAST(f.\"%s\" "
                                         "AS VARCHAR), 'NULL') || ''' is not an ISO 4217 code' END",
                                     f->currency, f->currency, f->currency, f->currency);
    for (size_t i = 0; i < f->n_amounts; i++)
        rc = rc ? rc : st_buf_printf(&b, ", CASE WHEN f.\"%s\" IS NOT NULL AND TRY_CAST(f.\"%s\" AS "
                                         "%s) IS NULL THEN '%s ''' || CAST(f.\"%s\" AS VARCHAR) || "
                                         "''' is not a %s' END",
                                     f->amounts[i], f->amounts[i], f->amount_types[i],
                                     f->amounts[i], f->amounts[i], f->amount_types[i]);
    rc = rc ? rc : st_buf_printf(&b, ", CASE WHEN f.\"%s\" IS NULL THEN '%s is NULL' END", f->time,
                                 f->time);
    if (dpath)
        rc = rc ? rc : st_buf_printf(&b, ", CASE WHEN f.\"%s\" IS NOT NULL AND (d._sk IS NULL OR "
                                         "d._is_deleted) THEN 'no %s version valid at ' || "
                                         "CAST(f.\"%s\" AS VARCHAR) END",
                                     f->time, f->dimension, f->time);
    rc = rc ? rc : st_buf_puts(&b, ") AS _reason FROM _sf_in f");
    if (dpath) {
        /* the version valid at the fact's time: the latest start at or
         * before it (intervals chain, so its end is after the time) */
        rc = rc ? rc : st_buf_puts(&b, " ASOF LEFT JOIN _sf_dim_history d ON ");
        for (size_t i = 0; rc == ST_OK && i < f->n_link; i++) {
            rc = st_buf_puts(&b, "f.");
            rc = rc ? rc : st_buf_sql_ident(&b, f->fact_cols[i]);
            rc = rc ? rc : st_buf_puts(&b, " = d.");
            rc = rc ? rc : st_buf_sql_ident(&b, f->dim_cols[i]);
            rc = rc ? rc : st_buf_puts(&b, " AND ");
        }
        rc = rc ? rc : st_buf_puts(&b, "f.");
        rc = rc ? rc : st_buf_sql_ident(&b, f->time);
        rc = rc ? rc : st_buf_puts(&b, " >= d._valid_from");
    }
    rc = rc ? rc : st_engine_exec(eng, b.data, err);
    st_buf_reset(&b);
    if (rc) {
        st_err_ctx(err, "silver fact %s: checking rows", f->name);
        goto done;
    }
    rc = st_engine_query_i64(eng, "SELECT count(*) FROM _sf_chk", &stats->rows_in, err);
    rc = rc ? rc : st_engine_query_i64(eng, "SELECT count(*) FROM _sf_chk WHERE _reason = ''",
                                       &stats->rows_ok, err);
    stats->rows_quarantined = stats->rows_in - stats->rows_ok;
    /* quarantine first: if the run stops between the two commits, the rerun
     * skips the quarantine (its txn is recorded) and writes the facts */
    if (rc == ST_OK && qv < bv) {
        /* the rows as they came, with the reasons */
        char *q = st_sprintf("SELECT i.* EXCLUDE (_sf_rid), c._reason, '%s' AS _batch_id, "
                             "CAST(now() AS TIMESTAMPTZ) AS _loaded_at FROM _sf_in i JOIN _sf_chk "
                             "c USING (_sf_rid) WHERE c._reason <> ''",
                             uuid);
        rc = q ? append(eng, qpath, q, app, bv, qname, err) : st_fail(err, ST_ERR_NOMEM, "quarantine");
        st_free(q);
    }
    if (rc == ST_OK) {
        char *q = st_sprintf("SELECT * EXCLUDE (_sf_rid, _reason%s), '%s' AS _batch_id, CAST(now() AS "
                             "TIMESTAMPTZ) AS _loaded_at FROM _sf_chk WHERE _reason = ''",
                             dpath ? ", _sf_linked" : "", uuid);
        rc = q ? append(eng, path, q, app, bv, app, err) : st_fail(err, ST_ERR_NOMEM, "facts");
        st_free(q);
    }
    stats->source_version = bv;
done:
    if (rc)
        st_err_ctx(err, "silver fact %s", f->name);
    st_buf_free(&b);
    st_buf_free(&reason);
    st_free(sql);
    st_free(bronze);
    st_free(app);
    st_free(qname);
    st_free(path);
    st_free(qpath);
    st_free(dname);
    st_free(dpath);
    return rc;
}
