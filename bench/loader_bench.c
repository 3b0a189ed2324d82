/*
 * loader_bench.c - loader throughput, raw event log -> raw + bronze Delta
 * tables.  Writes N events (~500 bytes, a mix of llm/web/backend with a few
 * duplicates) into a fresh event log, then times st_loader_run_once.
 *
 *   loader_bench [N] [batch_events]      (defaults 200000, 50000)
 *   loader_bench dedup IDS BATCH          the dedup runs alone: one event date
 *       filled with IDS ids in runs of BATCH, then 1M lookups (half hits);
 *       prints "loader-dedup ids=... add_s=... lookups_per_s=... disk_bytes=...
 *       runs=... rss_anon_mb=... rss_file_mb=..." (the heap stays flat: the runs
 *       are mmap'd files, resident only as reclaimable page cache)
 *
 * Prints one line: loader events=... seconds=... events_per_s=... loaded=...
 * cpu_s=... events_per_cpu_s=... (CPU time of all threads, steadier than the
 * wall clock on a shared machine).
 */
#include "strata/collect.h"
#include "strata/load.h"
#include "load/load_int.h"

#include <sys/stat.h>
#include <dirent.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* CPU seconds of the whole process (all threads): on a shared machine the
 * wall clock also counts time other processes held the cores. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const st_err *e)
{
    fprintf(stderr, "loader_bench: %s\n", e->msg);
    return 1;
}

static uint64_t idh(long i)
{
    char b[48];
    int n = snprintf(b, sizeof b, "0f8c2a1e-%08lx-4c1d-9e7b-%012lx", i * 7919, i);
    return st_id_hash(b, (size_t)n);
}

static long long dir_bytes(const char *dir)
{
    long long t = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *p = st_path_join(dir, de->d_name);
        struct stat sb;
        if (p && !stat(p, &sb))
            t += S_ISDIR(sb.st_mode) ? dir_bytes(p) : (long long)sb.st_size;
        st_free(p);
    }
    if (d)
        closedir(d);
    return t;
}

static int dedup_bench(long ids, long batch)
{
    st_err err;
    char tmpl[] = "/tmp/strata-dedup-bench-XXXXXX";
    char *dir = mkdtemp(tmpl);
    st_dedup *dd = NULL;
    if (!dir || batch <= 0 || st_dedup_open(dir, &dd, &err))
        return 1;
    uint64_t *h = st_malloc((size_t)batch * sizeof *h);
    if (!h)
        return 1;
    int64_t t0 = st_mono_ns();
    for (long done = 0; done < ids; done += batch) {
        long n = ids - done < batch ? ids - done : batch;
        for (long i = 0; i < n; i++)
            h[i] = idh(done + i);
        if (st_dedup_add(dd, 20000, h, (size_t)n, &err))
            return die(&err);
    }
    double add_s = (double)(st_mono_ns() - t0) / 1e9;
    size_t runs = st_dedup_runs(dd, 20000);
    st_dedup_close(dd);
    /* lookups from a fresh open, as after a restart */
    dd = NULL;
    bool seeded = false;
    if (st_dedup_open(dir, &dd, &err) || st_dedup_day(dd, 20000, &seeded, &err))
        return die(&err);
    long hits = 0, lookups = 1000000;
    t0 = st_mono_ns();
    for (long i = 0; i < lookups; i++)
        hits += st_dedup_has(dd, 20000, idh((i * 2654435761L) % (2 * ids)));
    double look_s = (double)(st_mono_ns() - t0) / 1e9;
    /* anonymous (heap) vs file-backed (the mapped runs, reclaimable page
     * cache) resident memory */
    long anon_kb = -1, file_kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "RssAnon: %ld", &anon_kb);
        sscanf(line, "RssFile: %ld", &file_kb);
    }
    if (f)
        fclose(f);
    printf("loader-dedup ids=%ld batch=%ld add_s=%.3f ids_per_s=%.0f lookups_per_s=%.0f hits=%ld "
           "disk_bytes=%lld runs=%zu rss_anon_mb=%.1f rss_file_mb=%.1f\n",
           ids, batch, add_s, (double)ids / add_s, (double)lookups / look_s, hits, dir_bytes(dir),
           runs, (double)anon_kb / 1024, (double)file_kb / 1024);
    st_dedup_close(dd);
    st_free(h);
    st_rmtree(dir, &err);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 3 && !strcmp(argv[1], "dedup"))
        return dedup_bench(atol(argv[2]), atol(argv[3]));
    long n = argc > 1 ? atol(argv[1]) : 200000;
    long batch = argc > 2 ? atol(argv[2]) : 50000;
    st_log_init();
    st_err err;
    char tmpl[] = "/tmp/strata-loader-bench-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir)
        return 1;
    char *yml = st_sprintf("collector:\n  event_log: {dir: ./eventlog}\n  sources:\n"
                           "    web: {key_hash: \"sha256:00\", families: [web_events]}\n"
                           "    llm: {key_hash: \"sha256:00\", families: [llm_calls]}\n"
                           "    backend: {key_hash: \"sha256:00\", families: [backend_events]}\n"
                           "loader: {batch_events: %ld}\n", batch);
    st_cfg_doc *doc = NULL;
    st_loader_cfg *cfg = NULL;
    if (st_cfg_load_string("bench.yml", yml, strlen(yml), &doc, &err) ||
        st_loader_cfg_load(st_cfg_root(doc), dir, &cfg, &err))
        return die(&err);
    st_evlog *log = NULL;
    st_evlog_opts o = {.dir = cfg->log_dir, .fsync_ms = 5};
    if (st_evlog_open(&o, &log, &err))
        return die(&err);
    char now[32];
    st_rfc3339_format(st_now_us() - 60000000, now);
    st_buf frames, one, ev;
    st_buf_init(&frames, 0);
    st_buf_init(&one, 0);
    st_buf_init(&ev, 0);
    int64_t t0 = st_mono_ns();
    size_t in_buf = 0;
    for (long i = 0; i < n; i++) {
        long id = (i % 50 == 49) ? i - 9 : i;   /* 2% duplicates (same family) */
        const char *src, *fam;
        st_buf_reset(&ev);
        switch (i % 3) {
        case 0:
            src = "llm";
            fam = "llm_calls";
            st_buf_printf(&ev, "{\"event_id\":\"ev-%ld\",\"event_type\":\"chat\",\"schema_version\":1,"
                          "\"event_time\":\"%s\",\"subject_id\":\"user-%ld\",\"payload\":{"
                          "\"gen_ai.operation.name\":\"chat\",\"gen_ai.provider.name\":\"openai\","
                          "\"gen_ai.request.model\":\"gpt-4o\",\"gen_ai.usage.input_tokens\":%ld,"
                          "\"gen_ai.usage.output_tokens\":95,\"latency_ms\":420.5,\"cost\":0.0031,"
                          "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"prompt\":\"Summarise the "
                          "quarterly report for fund %ld in three bullet points please\","
                          "\"response\":\"1. Returns up 2%%. 2. Costs flat. 3. Outlook stable.\"}}",
                          id, now, i % 1000, i % 5000, i % 97);
            break;
        case 1:
            src = "web";
            fam = "web_events";
            st_buf_printf(&ev, "{\"event_id\":\"ev-%ld\",\"event_type\":\"page\",\"schema_version\":1,"
                          "\"event_time\":\"%s\",\"context\":{\"ip\":\"198.51.100.%ld\",\"user_agent\":"
                          "\"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\",\"page\":{"
                          "\"url\":\"https://app.example.com/funds/%ld\",\"path\":\"/funds/%ld\","
                          "\"referrer\":\"https://www.example.org/\",\"title\":\"Fund overview\"}},"
                          "\"payload\":{\"anonymous_id\":\"anon-%ld\",\"properties\":{\"tab\":\"perf\","
                          "\"range\":\"1y\"}}}",
                          id, now, i % 250, i % 900, i % 900, i % 20000);
            break;
        default:
            src = "backend";
            fam = "backend_events";
            st_buf_printf(&ev, "{\"event_id\":\"ev-%ld\",\"event_type\":\"order_placed\",\"schema_version\":1,"
                          "\"event_time\":\"%s\",\"country\":\"DE\",\"entity_id\":\"fund-%ld\","
                          "\"payload\":{\"order_id\":\"o-%ld\",\"amount\":%ld.25,\"currency\":\"EUR\","
                          "\"channel\":\"api\",\"items\":[{\"sku\":\"A-1\",\"qty\":2},{\"sku\":\"B-7\","
                          "\"qty\":1}],\"note\":\"standard order placed through the partner api\"}}",
                          id, now, i % 40, i, i % 10000);
            break;
        }
        st_envelope env;
        if (st_envelope_parse(ev.data, ev.len, &env, &err))
            return die(&err);
        st_buf_reset(&one);
        st_envelope_record(&one, ev.data, ev.len, &env, src, fam, st_now_us());
        st_evlog_frame(&frames, one.data, one.len);
        if (++in_buf == 1000 || i == n - 1) {
            uint64_t ticket;
            if (st_evlog_append(log, frames.data, frames.len, in_buf, NULL, &ticket, &err) ||
                st_evlog_wait(log, ticket, &err))
                return die(&err);
            st_buf_reset(&frames);
            in_buf = 0;
        }
    }
    double write_s = (double)(st_mono_ns() - t0) / 1e9;
    st_evlog_stats es;
    st_evlog_stats_get(log, &es);
    st_evlog_close(log);
    st_loader *l = NULL;
    st_load_stats st = {0};
    if (st_loader_open(cfg, &l, &err))
        return die(&err);
    t0 = st_mono_ns();
    double c0 = cpu_s();
    if (st_loader_run_once(l, &st, &err))
        return die(&err);
    double s = (double)(st_mono_ns() - t0) / 1e9;
    double cpu = cpu_s() - c0;
    st_loader_close(l);
    printf("loader events=%ld batch_events=%ld log_bytes=%llu seconds=%.3f events_per_s=%.0f "
           "loaded=%lld duplicates=%lld quarantined=%lld batches=%lld log_write_s=%.3f cpu_s=%.3f "
           "events_per_cpu_s=%.0f lake_bytes=%lld\n",
           n, batch, (unsigned long long)es.n_bytes, s, (double)st.read / s, (long long)st.loaded,
           (long long)st.duplicates, (long long)st.quarantined, (long long)st.batches, write_s, cpu,
           (double)st.read / cpu, dir_bytes(cfg->lake));
    st_buf_free(&frames);
    st_buf_free(&one);
    st_buf_free(&ev);
    st_free(yml);
    st_cfg_doc_free(doc);
    st_loader_cfg_free(cfg);
    st_err e2;
    st_rmtree(dir, &e2);
    return 0;
}
