/*
 * evload_bench.c - a steady-rate load generator for the collector: C
 * threads on keep-alive loopback connections POST batches of events at a
 * fixed total rate and record each request's latency (open-loop: a late
 * request is not skipped, so queueing shows in the percentiles).
 *
 *   evload_bench PORT KEY EVENTS_PER_S SECONDS [BATCH] [CONNECTIONS]
 *
 * Prints "collector-latency rate=... sent=... ok=... p50_ms=... p99_ms=...".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port, batch = 10, conns = 4, seconds;
static double rate;
static const char *key;

struct worker {
    int id;
    double *lat_ms;
    size_t n, cap;
    long ok, bad;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

/* Reads one HTTP response; returns the status or -1. */
static int read_response(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    char *hdr_end = NULL;
    while (!hdr_end) {
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        hdr_end = strstr(buf, "\r\n\r\n");
    }
    int status = atoi(buf + 9);
    const char *cl = strcasestr(buf, "Content-Length:");
    size_t body = cl ? (size_t)atol(cl + 15) : 0;
    size_t have = len - (size_t)(hdr_end + 4 - buf);
    while (have < body) {
        ssize_t n = read(fd, buf, cap - 1);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    return status;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    int fd = connect_to();
    static const char pad[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    size_t cap = (size_t)batch * 700 + 1024;
    char *body = malloc(cap), *req = malloc(cap + 512), *resp = malloc(65536);
    double interval = (double)batch * conns / rate;   /* seconds between this thread's requests */
    double start = now_s() + interval * w->id / conns;
    long seq = 0;
    for (double next = start; next < start + seconds; next += interval) {
        double t = now_s();
        if (t < next) {
            struct timespec d = {(time_t)(next - t), (long)((next - t - (double)(time_t)(next - t)) * 1e9)};
            nanosleep(&d, NULL);
        }
        size_t bl = 0;
        for (int i = 0; i < batch; i++)
            bl += (size_t)snprintf(body + bl, cap - bl,
                                   "{\"event_id\":\"lat-%d-%ld-%d\",\"event_type\":\"page_view\",\"schema_version\":1,"
                                   "\"event_time\":\"2025-06-01T10:00:00.000Z\",\"country\":\"DE\","
                                   "\"context\":{\"page\":{\"url\":\"https://app.example.com/p\"}},\"payload\":{\"pad\":\"%s\"}}\n",
                                   w->id, seq, i, pad);
        seq++;
        int rl = snprintf(req, cap + 512,
                          "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                          "Content-Type: application/x-ndjson\r\nContent-Length: %zu\r\n\r\n%s",
                          key, bl, body);
        /* latency from the scheduled send time: open-loop */
        if (write(fd, req, (size_t)rl) != rl)
            break;
        int status = read_response(fd, resp, 65536);
        double lat = (now_s() - next) * 1000;
        if (status == 200)
            w->ok += batch;
        else
            w->bad += batch;
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 1024;
            w->lat_ms = realloc(w->lat_ms, w->cap * sizeof *w->lat_ms);
        }
        w->lat_ms[w->n++] = lat;
        if (status < 0) {
            close(fd);
            fd = connect_to();
        }
    }
    close(fd);
    free(body);
    free(req);
    free(resp);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: evload_bench PORT KEY EVENTS_PER_S SECONDS [BATCH] [CONNECTIONS]\n");
        return 2;
    }
    port = atoi(argv[1]);
    key = argv[2];
    rate = atof(argv[3]);
    seconds = atoi(argv[4]);
    if (argc > 5)
        batch = atoi(argv[5]);
    if (argc > 6)
        conns = atoi(argv[6]);
    struct worker *w = calloc((size_t)conns, sizeof *w);
    pthread_t *th = calloc((size_t)conns, sizeof *th);
    double t0 = now_s();
    for (int i = 0; i < conns; i++) {
        w[i].id = i;
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    size_t total = 0;
    long ok = 0, bad = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        total += w[i].n;
        ok += w[i].ok;
        bad += w[i].bad;
    }
    double el = now_s() - t0;
    double *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < conns; i++)
        for (size_t j = 0; j < w[i].n; j++)
            all[k++] = w[i].lat_ms[j];
    qsort(all, total, sizeof *all, cmp);
    printf("collector-latency target_eps=%.0f achieved_eps=%.0f ok=%ld failed=%ld batch=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
           rate, (double)(ok + bad) / el, ok, bad, batch, total ? all[total / 2] : 0, total ? all[total * 99 / 100] : 0,
           total ? all[total - 1] : 0);
    return bad ? 1 : 0;
}
