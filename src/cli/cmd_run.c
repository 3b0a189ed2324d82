/*
 * cmd_run.c - the orchestration commands over src/orch:
 *   strata run [SELECT...] [--select EXPR] [--exclude EXPR] [--workers N] [--partition P]
 *   strata plan [--select EXPR] [--exclude EXPR]
 *   strata backfill ASSET --from X --to Y [--workers N]
 *   strata runs [--asset A] [--limit N] | strata runs show RUN_ID
 *   strata schedule [--once] [--at TIME]
 *   strata init DIR
 * All take --project DIR (default ".").
 */
#include "cli.h"

#include "strata/orch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct args {
    const char *project;
    const char *select, *exclude, *partition, *from, *to, *asset, *at;
    int workers, limit;
    bool once, help;
    const char *pos[8];
    int n_pos;
} args;

static int parse(int argc, char **argv, args *a, const char *cmd)
{
    memset(a, 0, sizeof *a);
    a->project = ".";
    a->limit = 20;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(s, "--help") || !strcmp(s, "-h"))
            a->help = true;
        else if (!strcmp(s, "--project") && more)
            a->project = argv[++i];
        else if ((!strcmp(s, "--select") || !strcmp(s, "-s")) && more)
            a->select = argv[++i];
        else if (!strcmp(s, "--exclude") && more)
            a->exclude = argv[++i];
        else if (!strcmp(s, "--partition") && more)
            a->partition = argv[++i];
        else if (!strcmp(s, "--from") && more)
            a->from = argv[++i];
        else if (!strcmp(s, "--to") && more)
            a->to = argv[++i];
        else if (!strcmp(s, "--asset") && more)
            a->asset = argv[++i];
        else if (!strcmp(s, "--at") && more)
            a->at = argv[++i];
        else if (!strcmp(s, "--once"))
            a->once = true;
        else if (!strcmp(s, "--workers") && more) {
            char *end = NULL;
            long v = strtol(argv[++i], &end, 10);
            if (!end || *end || v < 1 || v > 256) {
                fprintf(stderr, "strata %s: --workers expects 1..256\n", cmd);
                return ST_EXIT_USAGE;
            }
            a->workers = (int)v;
        } else if (!strcmp(s, "--limit") && more) {
            char *end = NULL;
            long v = strtol(argv[++i], &end, 10);
            if (!end || *end || v < 1 || v > 100000) {
                fprintf(stderr, "strata %s: --limit expects a positive number\n", cmd);
                return ST_EXIT_USAGE;
            }
            a->limit = (int)v;
        } else if (s[0] == '-' || a->n_pos >= 8) {
            fprintf(stderr, "strata %s: unexpected argument '%s'\n", cmd, s);
            return ST_EXIT_USAGE;
        } else {
            a->pos[a->n_pos++] = s;
        }
    }
    return ST_EXIT_OK;
}

/* Loads the project and opens the orchestrator. */
static int open_orch(const args *a, st_project **p, st_orch **o, st_err *err)
{
    if (st_project_load(a->project, p, err) || st_orch_open(*p, o, err))
        return ST_EXIT_ERROR;
    return ST_EXIT_OK;
}

static void print_summary(const st_run_summary *s)
{
    printf("\nrun %s: %zu succeeded, %zu failed, %zu skipped (upstream failed), %zu observed, "
           "%lld ms\n", s->run_id, s->n_ok, s->n_failed, s->n_skipped, s->n_observed,
           (long long)s->duration_ms);
    for (int pass = 0; pass < 3; pass++) {
        st_asset_status want = pass == 0 ? ST_AS_FAILED : pass == 1 ? ST_AS_SKIPPED : ST_AS_OK;
        bool first = true;
        for (size_t i = 0; i < s->n; i++) {
            const st_asset_result *r = &s->assets[i];
            if (r->status != want)
                continue;
            if (first)
                printf("%s:\n", pass == 0 ? "failed" : pass == 1 ? "skipped" : "succeeded");
            first = false;
            if (pass == 0)
                printf("  %-40s %s%s\n", r->key, r->error ? r->error : "",
                       r->timed_out ? " [timeout]" : "");
            else if (pass == 1)
                printf("  %-40s upstream %s failed\n", r->key, r->blocked_by ? r->blocked_by : "?");
            else
                printf("  %-40s version %lld, %lld rows, %lld ms%s\n", r->key,
                       (long long)r->version, (long long)r->rows, (long long)r->duration_ms,
                       r->attempts > 1 ? " (after retries)" : "");
        }
    }
    printf("details: strata runs show %s\n", s->run_id);
}

/* --select and positional assets together form one union expression. */
static void selection(const args *a, st_buf *sel)
{
    st_buf_init(sel, 0);
    if (a->select)
        st_buf_puts(sel, a->select);
    for (int i = 0; i < a->n_pos; i++)
        st_buf_printf(sel, "%s%s", sel->len ? " " : "", a->pos[i]);
}

int cmd_run(int argc, char **argv)
{
    args a;
    int code = parse(argc, argv, &a, "run");
    if (code)
        return code;
    if (a.help) {
        printf("usage: strata run [ASSET...] [--select EXPR] [--exclude EXPR] [--workers N]\n"
               "                  [--partition P] [--project DIR]\n\n"
               "Runs the selected assets (default: all) in dependency order with N parallel\n"
               "workers, per-asset timeouts and retries; a failure stops only what depends\n"
               "on it.  Selection: asset, +asset (with ancestors), asset+ (with\n"
               "descendants), layer:gold, tag:finance, kind:silver, globs (gold.*);\n"
               "terms separated by spaces or commas are a union.\n");
        return ST_EXIT_OK;
    }
    st_buf sel;
    selection(&a, &sel);
    st_err err;
    st_err_clear(&err);
    st_project *p = NULL;
    st_orch *o = NULL;
    st_run_summary *sum = NULL;
    code = open_orch(&a, &p, &o, &err);
    if (code == ST_EXIT_OK) {
        st_run_opts ro = {.select = sel.len ? sel.data : NULL,
                          .exclude = a.exclude,
                          .workers = a.workers,
                          .partition = a.partition,
                          .progress = stdout};
        st_rc rc = st_orch_run(o, &ro, &sum, &err);
        if (sum)
            print_summary(sum);
        code = rc ? ST_EXIT_ERROR : ST_EXIT_OK;
    }
    if (code)
        cli_fail(&err);
    st_run_summary_free(sum);
    st_orch_close(o);
    st_project_free(p);
    st_buf_free(&sel);
    return code;
}

int cmd_plan(int argc, char **argv)
{
    args a;
    int code = parse(argc, argv, &a, "plan");
    if (code)
        return code;
    if (a.help) {
        printf("usage: strata plan [ASSET...] [--select EXPR] [--exclude EXPR] [--project DIR]\n\n"
               "Prints the DAG in dependency order: what `strata run` with the same selection\n"
               "would run, and why (never materialized, upstream has a newer version,\n"
               "schedule due, selected explicitly).\n");
        return ST_EXIT_OK;
    }
    st_buf sel;
    selection(&a, &sel);
    st_err err;
    st_err_clear(&err);
    st_project *p = NULL;
    st_orch *o = NULL;
    st_plan *plan = NULL;
    code = open_orch(&a, &p, &o, &err);
    if (code == ST_EXIT_OK) {
        if (st_orch_plan(o, sel.len ? sel.data : NULL, a.exclude, st_now_ms(), &plan, &err))
            code = ST_EXIT_ERROR;
        else
            st_plan_print(plan, st_orch_dag(o), stdout);
    }
    if (code)
        cli_fail(&err);
    st_plan_free(plan);
    st_orch_close(o);
    st_project_free(p);
    st_buf_free(&sel);
    return code;
}

int cmd_backfill(int argc, char **argv)
{
    args a;
    int code = parse(argc, argv, &a, "backfill");
    if (code)
        return code;
    if (a.help || a.n_pos != 1) {
        fprintf(a.help ? stdout : stderr,
                "usage: strata backfill ASSET [--from P] [--to P] [--workers N] [--project DIR]\n\n"
                "Runs ASSET once per partition from --from to --to (inclusive: days\n"
                "YYYY-MM-DD, months YYYY-MM, or declared values), each partition replaced\n"
                "atomically.  Done partitions are recorded: the same backfill run again\n"
                "skips them and resumes after a failure.\n");
        return a.help ? ST_EXIT_OK : ST_EXIT_USAGE;
    }
    st_err err;
    st_err_clear(&err);
    st_project *p = NULL;
    st_orch *o = NULL;
    code = open_orch(&a, &p, &o, &err);
    if (code == ST_EXIT_OK) {
        size_t done = 0, skipped = 0, failed = 0;
        st_run_opts ro = {.workers = a.workers, .progress = stdout};
        st_rc rc = st_orch_backfill(o, a.pos[0], a.from, a.to, &ro, &done, &skipped, &failed, &err);
        printf("backfill %s: %zu partition(s) built, %zu already done, %zu failed\n", a.pos[0],
               done, skipped, failed);
        code = rc ? ST_EXIT_ERROR : ST_EXIT_OK;
    }
    if (code)
        cli_fail(&err);
    st_orch_close(o);
    st_project_free(p);
    return code;
}

int cmd_runs(int argc, char **argv)
{
    args a;
    int code = parse(argc, argv, &a, "runs");
    if (code)
        return code;
    bool show = a.n_pos >= 1 && !strcmp(a.pos[0], "show");
    if (a.help || (a.n_pos && !show) || (show && a.n_pos != 2)) {
        fprintf(a.help ? stdout : stderr,
                "usage: strata runs [--asset A] [--limit N] [--project DIR]\n"
                "       strata runs show RUN_ID [--project DIR]\n\n"
                "Lists runs (or the materialisations of one asset); `show` prints one run\n"
                "with each asset's version, rows, bytes, duration, errors and logs.\n");
        return a.help ? ST_EXIT_OK : ST_EXIT_USAGE;
    }
    st_err err;
    st_err_clear(&err);
    st_project *p = NULL;
    st_orch *o = NULL;
    code = open_orch(&a, &p, &o, &err);
    if (code == ST_EXIT_OK) {
        st_rc rc = show ? st_orch_run_show(o, a.pos[1], stdout, &err)
                        : st_orch_runs_print(o, a.asset, a.limit, stdout, &err);
        code = rc ? ST_EXIT_ERROR : ST_EXIT_OK;
    }
    if (code)
        cli_fail(&err);
    st_orch_close(o);
    st_project_free(p);
    return code;
}

/* "2026-01-31T06:00" / "2026-01-31 06:00[:SS][Z]" or epoch ms -> ms. */
static bool parse_at(const char *s, int64_t *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0;
    char sep;
    int n = sscanf(s, "%d-%d-%d%c%d:%d:%d", &y, &mo, &d, &sep, &h, &mi, &sec);
    if (n >= 3) {
        struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                        .tm_min = mi, .tm_sec = sec};
        *out = (int64_t)timegm(&tm) * 1000;
        return true;
    }
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end && !*end) {
        *out = v;
        return true;
    }
    return false;
}

int cmd_schedule(int argc, char **argv)
{
    args a;
    int code = parse(argc, argv, &a, "schedule");
    if (code)
        return code;
    if (a.help || a.n_pos) {
        fprintf(a.help ? stdout : stderr,
                "usage: strata schedule [--once [--at TIME]] [--project DIR]\n\n"
                "Without --once: lists the scheduled assets with their next fire time.\n"
                "--once runs one scheduler tick now (or at TIME, UTC): the assets whose\n"
                "cron fired since the previous tick, and on_upstream assets whose inputs\n"
                "changed.  `strata serve` runs the same tick every minute.\n");
        return a.help ? ST_EXIT_OK : ST_EXIT_USAGE;
    }
    int64_t now = st_now_ms();
    if (a.at && !parse_at(a.at, &now)) {
        fprintf(stderr, "strata schedule: --at expects YYYY-MM-DDTHH:MM[:SS] or epoch ms\n");
        return ST_EXIT_USAGE;
    }
    st_err err;
    st_err_clear(&err);
    st_project *p = NULL;
    st_orch *o = NULL;
    code = open_orch(&a, &p, &o, &err);
    if (code == ST_EXIT_OK && a.once) {
        st_run_summary *sum = NULL;
        st_rc rc = st_sched_tick(o, now, &sum, &err);
        if (sum)
            print_summary(sum);
        else if (!rc)
            printf("nothing due\n");
        st_run_summary_free(sum);
        code = rc ? ST_EXIT_ERROR : ST_EXIT_OK;
    } else if (code == ST_EXIT_OK) {
        const st_dag *d = st_orch_dag(o);
        printf("%-40s  %-20s  %s\n", "ASSET", "SCHEDULE", "NEXT (UTC)");
        for (size_t i = 0; i < d->n && code == ST_EXIT_OK; i++) {
            const st_asset_def *x = d->a[i];
            if (!x->schedule && !x->on_upstream)
                continue;
            char next_s[32] = "on upstream change";
            if (x->schedule) {
                st_cron c;
                int64_t next = 0;
                if (st_cron_parse(x->schedule, &c, &err) || st_cron_next(&c, now, &next, &err)) {
                    st_err_ctx(&err, "%s", x->key);
                    code = ST_EXIT_ERROR;
                    break;
                }
                time_t t = (time_t)(next / 1000);
                struct tm tm;
                gmtime_r(&t, &tm);
                strftime(next_s, sizeof next_s, "%Y-%m-%d %H:%M", &tm);
            }
            printf("%-40s  %-20s  %s\n", x->key, x->schedule ? x->schedule : "on_upstream", next_s);
        }
    }
    if (code)
        cli_fail(&err);
    st_orch_close(o);
    st_project_free(p);
    return code;
}

int cmd_init(int argc, char **argv)
{
    args a;
    int code = parse(argc, argv, &a, "init");
    if (code)
        return code;
    if (a.help || a.n_pos != 1) {
        fprintf(a.help ? stdout : stderr,
                "usage: strata init DIR\n\nCreates a commented Strata project in DIR: strata.yml,"
                " schemas/,\nmodels/silver/, models/gold/ with an example model and its checks.\n");
        return a.help ? ST_EXIT_OK : ST_EXIT_USAGE;
    }
    st_err err;
    st_err_clear(&err);
    if (st_orch_init_project(a.pos[0], &err))
        return cli_fail(&err);
    printf("created a Strata project in %s\nnext: cd %s && strata plan && strata run\n", a.pos[0],
           a.pos[0]);
    return ST_EXIT_OK;
}
