/*
 * lineage.c - OpenLineage RunEvents (spec 2-0-2) for asset runs: START
 * before the first attempt, COMPLETE or FAIL at the end, with the asset's
 * inputs and output as datasets carrying schema facets read from their
 * Delta logs.  Events are appended as NDJSON to `lineage.file` and/or
 * POSTed with libcurl to `lineage.url` (the HTTP transport's
 * /api/v1/lineage endpoint or any collector).  Lineage never fails a run:
 * errors are logged.
 */
#include "orch_int.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PRODUCER "https://github.com/strata-data/strata"
#define SCHEMA_URL "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
#define SCHEMA_FACET_URL \
    "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
#define PARENT_FACET_URL \
    "https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet"
#define ERROR_FACET_URL \
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"

/* {"namespace":"file","name":"<path>","facets":{"schema":{...}}} */
static st_rc put_dataset(st_orch *o, st_engine *eng, const char *key, st_buf *b)
{
    char *path = st_project_table_path(o->p, key);
    if (!path)
        return ST_ERR_NOMEM;
    st_rc rc = st_buf_puts(b, "{\"namespace\":\"file\",\"name\":");
    rc = rc ? rc : st_buf_json_str(b, path);
    rc = rc ? rc : st_buf_puts(b, ",\"facets\":{");
    int64_t v = -1;
    st_delta_snapshot *s = NULL;
    if (rc == ST_OK && st_delta_latest_version(path, &v, NULL) == ST_OK && v >= 0 &&
        st_delta_snapshot_load(eng, path, -1, &s, NULL) == ST_OK && s->metadata.schema) {
        const st_delta_schema *sc = s->metadata.schema;
        rc = st_buf_puts(b, "\"schema\":{\"_producer\":\"" PRODUCER "\",\"_schemaURL\":\""
                            SCHEMA_FACET_URL "\",\"fields\":[");
        for (size_t i = 0; rc == ST_OK && i < sc->n_fields; i++) {
            char *t = st_delta_type_ddl(&sc->fields[i].type);
            rc = i ? st_buf_putc(b, ',') : ST_OK;
            rc = rc ? rc : st_buf_puts(b, "{\"name\":");
            rc = rc ? rc : st_buf_json_str(b, sc->fields[i].name);
            rc = rc ? rc : st_buf_puts(b, ",\"type\":");
            rc = rc ? rc : st_buf_json_str(b, t ? t : "unknown");
            rc = rc ? rc : st_buf_putc(b, '}');
            st_free(t);
        }
        rc = rc ? rc : st_buf_puts(b, "]},\"version\":{\"_producer\":\"" PRODUCER
                                      "\",\"_schemaURL\":\"https://openlineage.io/spec/facets/"
                                      "1-0-1/DatasetVersionDatasetFacet.json#/$defs/"
                                      "DatasetVersionDatasetFacet\",\"datasetVersion\":");
        rc = rc ? rc : st_buf_printf(b, "\"%lld\"}", (long long)v);
    }
    st_delta_snapshot_free(s);
    rc = rc ? rc : st_buf_puts(b, "}}");
    st_free(path);
    return rc;
}

char *orch_lineage_json(st_orch *o, st_engine *eng, const char *event, const char *lineage_run_id,
                        const char *parent_run_id, const st_asset_def *a, const char *error)
{
    st_buf b;
    st_buf_init(&b, 16u << 20);
    char ts[40];
    int64_t us = st_now_us();
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%06lldZ", (long long)(us % 1000000));
    const char *ns = o->p->lineage_namespace ? o->p->lineage_namespace : "strata";
    st_rc rc = st_buf_puts(&b, "{\"eventType\":");
    rc = rc ? rc : st_buf_json_str(&b, event);
    rc = rc ? rc : st_buf_printf(&b, ",\"eventTime\":\"%s\",\"run\":{\"runId\":\"%s\",\"facets\":{",
                                 ts, lineage_run_id);
    if (parent_run_id) {
        rc = rc ? rc : st_buf_puts(&b, "\"parent\":{\"_producer\":\"" PRODUCER "\",\"_schemaURL\":\""
                                       PARENT_FACET_URL "\",\"run\":{\"runId\":");
        /* the orchestrator run id is a UUID too */
        rc = rc ? rc : st_buf_json_str(&b, parent_run_id);
        rc = rc ? rc : st_buf_puts(&b, "},\"job\":{\"namespace\":");
        rc = rc ? rc : st_buf_json_str(&b, ns);
        rc = rc ? rc : st_buf_puts(&b, ",\"name\":\"strata.run\"}}");
    }
    if (error) {
        rc = rc ? rc : st_buf_puts(&b, parent_run_id ? "," : "");
        rc = rc ? rc : st_buf_puts(&b, "\"errorMessage\":{\"_producer\":\"" PRODUCER
                                       "\",\"_schemaURL\":\"" ERROR_FACET_URL "\",\"message\":");
        rc = rc ? rc : st_buf_json_str(&b, error);
        rc = rc ? rc : st_buf_puts(&b, ",\"programmingLanguage\":\"SQL\"}");
    }
    rc = rc ? rc : st_buf_puts(&b, "}},\"job\":{\"namespace\":");
    rc = rc ? rc : st_buf_json_str(&b, ns);
    rc = rc ? rc : st_buf_puts(&b, ",\"name\":");
    rc = rc ? rc : st_buf_json_str(&b, a->key);
    rc = rc ? rc : st_buf_puts(&b, ",\"facets\":{}},\"inputs\":[");
    long idx = st_dag_find(o->dag, a->key);
    for (size_t j = 0; rc == ST_OK && idx >= 0 && j < o->dag->n_deps[idx]; j++) {
        rc = j ? st_buf_putc(&b, ',') : ST_OK;
        rc = rc ? rc : put_dataset(o, eng, o->dag->a[o->dag->deps[idx][j]]->key, &b);
    }
    rc = rc ? rc : st_buf_puts(&b, "],\"outputs\":[");
    rc = rc ? rc : put_dataset(o, eng, a->key, &b);
    rc = rc ? rc : st_buf_puts(&b, "],\"producer\":\"" PRODUCER "\",\"schemaURL\":\"" SCHEMA_URL
                                   "\"}");
    if (rc) {
        st_buf_free(&b);
        return NULL;
    }
    return st_buf_take(&b);
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static st_rc post(const char *url, const char *json, st_err *err)
{
    CURL *c = curl_easy_init();
    if (!c)
        return st_fail(err, ST_ERR_NOMEM, "lineage: curl");
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK)
        return st_fail(err, ST_ERR_REMOTE, "lineage POST %s: %s", url, curl_easy_strerror(cc));
    if (status < 200 || status >= 300)
        return st_fail(err, ST_ERR_REMOTE, "lineage POST %s: HTTP %ld", url, status);
    return ST_OK;
}

void orch_lineage(st_orch *o, st_engine *eng, const char *event, const char *lineage_run_id,
                  const char *parent_run_id, const st_asset_def *a, const char *error)
{
    if (!o->p->lineage_file && !o->p->lineage_url)
        return;
    char *json = orch_lineage_json(o, eng, event, lineage_run_id, parent_run_id, a, error);
    if (!json) {
        st_warn("lineage: could not build the %s event of %s", event, a->key);
        return;
    }
    st_err err;
    if (o->p->lineage_file) {
        pthread_mutex_lock(&o->mu);
        int fd = open(o->p->lineage_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            st_warn("lineage: cannot open %s", o->p->lineage_file);
        } else {
            size_t len = strlen(json);
            json[len] = '\n';  /* st_buf_take leaves room: the NUL */
            ssize_t w = write(fd, json, len + 1);
            json[len] = 0;
            if (w != (ssize_t)(len + 1))
                st_warn("lineage: short write to %s", o->p->lineage_file);
            close(fd);
        }
        pthread_mutex_unlock(&o->mu);
    }
    if (o->p->lineage_url && post(o->p->lineage_url, json, &err))
        st_warn("%s", err.msg);
    st_free(json);
}
