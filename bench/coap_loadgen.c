/*
 * A closed-loop CoAP-over-UDP load generator for the aiolwm2m benchmarks.
 *
 * Opens C sockets (distinct source ports) and keeps N Confirmable GET requests in flight on
 * each. Every request carries a fresh message ID (per socket) and a fresh 4-byte token; a
 * response is matched by token and triggers the next request at once. Requests that get no
 * answer within the retry interval are replaced by new ones and counted as lost.
 *
 * Usage: coap_loadgen HOST PORT SECONDS CONNS INFLIGHT PATH [WARMUP_SECONDS]
 * Prints one line: "requests=R seconds=S rps=X lost=L p50_us=A p99_us=B".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define MAX_INFLIGHT 64
#define HIST_BUCKETS 200000 /* 1 us resolution up to 200 ms */

typedef struct {
    uint32_t token;
    double sent_at;
    int busy;
} slot_t;

typedef struct {
    int fd;
    uint16_t next_mid;
    slot_t slots[MAX_INFLIGHT];
} conn_t;

static conn_t conns[MAX_CONNS];
static unsigned long hist[HIST_BUCKETS + 1];
static uint32_t token_counter = 1;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t build_get(uint8_t *buf, uint16_t mid, uint32_t token, const char *path) {
    size_t n = 0;
    buf[n++] = 0x40 | 4; /* ver 1, CON, TKL 4 */
    buf[n++] = 0x01;     /* GET */
    buf[n++] = mid >> 8;
    buf[n++] = mid & 0xff;
    memcpy(buf + n, &token, 4);
    n += 4;
    unsigned last = 0;
    const char *p = path;
    while (*p == '/') p++;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        unsigned delta = 11 - last;
        last = 11;
        if (len < 13) {
            buf[n++] = (delta << 4) | len;
        } else {
            buf[n++] = (delta << 4) | 13;
            buf[n++] = len - 13;
        }
        memcpy(buf + n, p, len);
        n += len;
        p += len;
        while (*p == '/') p++;
    }
    return n;
}

static void send_request(conn_t *c, int i, const char *path, double t) {
    uint8_t buf[256];
    slot_t *s = &c->slots[i];
    s->token = token_counter++;
    s->sent_at = t;
    s->busy = 1;
    size_t n = build_get(buf, c->next_mid++, s->token, path);
    if (send(c->fd, buf, n, 0) < 0 && errno != EAGAIN) {
        perror("send");
    }
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s HOST PORT SECONDS CONNS INFLIGHT PATH [WARMUP]\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    const char *port = argv[2];
    double seconds = atof(argv[3]);
    int nconns = atoi(argv[4]);
    int inflight = atoi(argv[5]);
    const char *path = argv[6];
    double warmup = argc > 7 ? atof(argv[7]) : 1.0;
    if (nconns < 1 || nconns > MAX_CONNS || inflight < 1 || inflight > MAX_INFLIGHT) {
        fprintf(stderr, "bad CONNS/INFLIGHT\n");
        return 2;
    }
    struct addrinfo hints = {0}, *res;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        fprintf(stderr, "cannot resolve %s\n", host);
        return 2;
    }
    struct pollfd *pfds = calloc(nconns, sizeof(struct pollfd));
    srand((unsigned)time(NULL));
    token_counter = (uint32_t)rand();
    for (int c = 0; c < nconns; c++) {
        int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
            perror("socket/connect");
            return 1;
        }
        conns[c].fd = fd;
        conns[c].next_mid = (uint16_t)rand();
        pfds[c].fd = fd;
        pfds[c].events = POLLIN;
    }
    double start = now_s();
    double measure_from = start + warmup;
    double stop = measure_from + seconds;
    for (int c = 0; c < nconns; c++)
        for (int i = 0; i < inflight; i++) send_request(&conns[c], i, path, start);
    unsigned long done = 0, lost = 0;
    double retry = 1.0;
    double last_sweep = start;
    uint8_t buf[2048];
    for (;;) {
        int r = poll(pfds, nconns, 50);
        double t = now_s();
        if (t >= stop) break;
        if (r > 0) {
            for (int c = 0; c < nconns; c++) {
                if (!(pfds[c].revents & POLLIN)) continue;
                conn_t *cn = &conns[c];
                for (;;) {
                    ssize_t n = recv(cn->fd, buf, sizeof buf, 0);
                    if (n < 0) break;
                    if (n < 8 || (buf[0] & 0x0f) != 4) continue;
                    uint32_t token;
                    memcpy(&token, buf + 4, 4);
                    for (int i = 0; i < inflight; i++) {
                        slot_t *s = &cn->slots[i];
                        if (s->busy && s->token == token) {
                            if (t >= measure_from) {
                                done++;
                                long us = (long)((t - s->sent_at) * 1e6);
                                hist[us < HIST_BUCKETS ? us : HIST_BUCKETS]++;
                            }
                            send_request(cn, i, path, t);
                            break;
                        }
                    }
                }
            }
        }
        if (t - last_sweep > 0.1) {
            last_sweep = t;
            for (int c = 0; c < nconns; c++)
                for (int i = 0; i < inflight; i++)
                    if (t - conns[c].slots[i].sent_at > retry) {
                        if (t >= measure_from) lost++;
                        send_request(&conns[c], i, path, t);
                    }
        }
    }
    double elapsed = now_s() - measure_from;
    unsigned long acc = 0, p50 = 0, p99 = 0;
    int have50 = 0;
    for (int i = 0; i <= HIST_BUCKETS; i++) {
        acc += hist[i];
        if (!have50 && acc * 2 >= done) { p50 = i; have50 = 1; }
        if (acc * 100 >= done * 99) { p99 = i; break; }
    }
    printf("requests=%lu seconds=%.3f rps=%.0f lost=%lu p50_us=%lu p99_us=%lu\n", done, elapsed,
           done / elapsed, lost, p50, p99);
    return 0;
}
