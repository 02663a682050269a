/*
 * Resource Directory lookups for bench/bench_rd.py: a closed loop of Confirmable GETs.
 *
 * CONNS sockets each keep INFLIGHT lookups outstanding; an answer (matched by its 4-byte
 * token) sends the next one at once. Each lookup names a random endpoint of the N the
 * benchmark registered (bench-0 .. bench-<N-1>). MODE chooses the request:
 *   wkc   GET /.well-known/core?rt=core.rd-lookup-ep   (the baseline: same path, no lookup)
 *   ep    GET /rd-lookup/ep?ep=bench-R                 (endpoint lookup by an indexed name)
 *   res   GET /rd-lookup/res?ep=bench-R                (its resources)
 *   and   GET /rd-lookup/res?d=bench&rt=light&ep=bench-R (three indexed criteria, ANDed)
 * Answers other than 2.05 are counted as errors; unanswered requests are resent after 1 s
 * and counted as lost. Nothing is measured during the first WARMUP seconds.
 *
 * Usage: rd_lookup_loadgen HOST PORT SECONDS CONNS INFLIGHT MODE N [WARMUP]
 * Prints: "requests=R seconds=S rps=X lost=L errors=E p50_us=A p99_us=B bytes=AVG"
 */
#define _GNU_SOURCE
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

#define CONNS_MAX 256
#define INFLIGHT_MAX 64
#define BUCKETS 2000000 /* 1 us each, up to 2 s */

struct pending {
    uint32_t token;
    double since;
    int active;
};

struct socket_state {
    int fd;
    uint16_t mid;
    struct pending slot[INFLIGHT_MAX];
};

static struct socket_state sockets[CONNS_MAX];
static unsigned long *latency;
static uint32_t next_token;
static const char *mode;
static long endpoints;

static double clock_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One option, delta-encoded against *prev (numbers ascend). */
static size_t option(uint8_t *out, unsigned *prev, unsigned number, const char *value,
                     size_t len) {
    size_t k = 0;
    unsigned delta = number - *prev;
    *prev = number;
    unsigned dn = delta < 13 ? delta : 13, ln = len < 13 ? (unsigned)len : 13;
    out[k++] = (uint8_t)(dn << 4 | ln);
    if (dn == 13) out[k++] = (uint8_t)(delta - 13);
    if (ln == 13) out[k++] = (uint8_t)(len - 13);
    memcpy(out + k, value, len);
    return k + len;
}

static size_t lookup_request(uint8_t *out, uint16_t mid, uint32_t token) {
    size_t k = 0;
    unsigned prev = 0;
    char query[48];
    int qlen = snprintf(query, sizeof query, "ep=bench-%ld", (long)(random() % endpoints));
    out[k++] = 0x44; /* version 1, CON, 4-byte token */
    out[k++] = 0x01; /* GET */
    out[k++] = (uint8_t)(mid >> 8);
    out[k++] = (uint8_t)mid;
    memcpy(out + k, &token, 4);
    k += 4;
    if (strcmp(mode, "wkc") == 0) {
        k += option(out + k, &prev, 11, ".well-known", 11);
        k += option(out + k, &prev, 11, "core", 4);
        k += option(out + k, &prev, 15, "rt=core.rd-lookup-ep", 20);
        return k;
    }
    k += option(out + k, &prev, 11, "rd-lookup", 9);
    k += option(out + k, &prev, 11, strcmp(mode, "ep") == 0 ? "ep" : "res",
                strcmp(mode, "ep") == 0 ? 2 : 3);
    if (strcmp(mode, "and") == 0) {
        k += option(out + k, &prev, 15, "d=bench", 7);
        k += option(out + k, &prev, 15, "rt=light", 8);
    }
    k += option(out + k, &prev, 15, query, (size_t)qlen);
    return k;
}

static void fire(struct socket_state *s, int i, double now) {
    uint8_t buf[128];
    struct pending *p = &s->slot[i];
    p->token = next_token++;
    p->since = now;
    p->active = 1;
    size_t n = lookup_request(buf, s->mid++, p->token);
    if (send(s->fd, buf, n, 0) < 0 && errno != EAGAIN) perror("send");
}

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: %s HOST PORT SECONDS CONNS INFLIGHT MODE N [WARMUP]\n",
                argv[0]);
        return 2;
    }
    double seconds = atof(argv[3]);
    int nsock = atoi(argv[4]), inflight = atoi(argv[5]);
    mode = argv[6];
    endpoints = atol(argv[7]);
    double warmup = argc > 8 ? atof(argv[8]) : 1.0;
    if (nsock < 1 || nsock > CONNS_MAX || inflight < 1 || inflight > INFLIGHT_MAX ||
        endpoints < 1) {
        fprintf(stderr, "bad CONNS, INFLIGHT or N\n");
        return 2;
    }
    struct addrinfo hints = {0}, *addr;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(argv[1], argv[2], &hints, &addr) != 0) return 2;
    struct pollfd fds[CONNS_MAX];
    srandom((unsigned)time(NULL));
    next_token = (uint32_t)random();
    for (int c = 0; c < nsock; c++) {
        int fd = socket(addr->ai_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fd < 0 || connect(fd, addr->ai_addr, addr->ai_addrlen) < 0) {
            perror("socket");
            return 1;
        }
        sockets[c].fd = fd;
        sockets[c].mid = (uint16_t)random();
        fds[c].fd = fd;
        fds[c].events = POLLIN;
    }
    latency = calloc(BUCKETS + 1, sizeof *latency);
    double begin = clock_s(), from = begin + warmup, until = from + seconds;
    for (int c = 0; c < nsock; c++)
        for (int i = 0; i < inflight; i++) fire(&sockets[c], i, begin);
    unsigned long answered = 0, lost = 0, errors = 0, bytes = 0;
    double swept = begin;
    uint8_t buf[4096];
    for (;;) {
        int ready = poll(fds, (nfds_t)nsock, 50);
        double now = clock_s();
        if (now >= until) break;
        for (int c = 0; ready > 0 && c < nsock; c++) {
            if (!(fds[c].revents & POLLIN)) continue;
            struct socket_state *s = &sockets[c];
            for (;;) {
                ssize_t n = recv(s->fd, buf, sizeof buf, 0);
                if (n < 0) break;
                if (n < 8 || (buf[0] & 0x0f) != 4 || buf[1] == 0) continue; /* empty ACK */
                uint32_t token;
                memcpy(&token, buf + 4, 4);
                for (int i = 0; i < inflight; i++) {
                    struct pending *p = &s->slot[i];
                    if (!p->active || p->token != token) continue;
                    if (now >= from) {
                        if (buf[1] != 0x45) errors++;
                        answered++;
                        bytes += (unsigned long)n;
                        long us = (long)((now - p->since) * 1e6);
                        latency[us < BUCKETS ? us : BUCKETS]++;
                    }
                    fire(s, i, now);
                    break;
                }
            }
        }
        if (now - swept > 0.1) {
            swept = now;
            for (int c = 0; c < nsock; c++)
                for (int i = 0; i < inflight; i++)
                    if (now - sockets[c].slot[i].since > 1.0) {
                        if (now >= from) lost++;
                        fire(&sockets[c], i, now);
                    }
        }
    }
    double elapsed = clock_s() - from;
    unsigned long seen = 0, p50 = 0, p99 = 0;
    int half = 0;
    for (unsigned long b = 0; b <= BUCKETS; b++) {
        seen += latency[b];
        if (!half && seen * 2 >= answered) { p50 = b; half = 1; }
        if (seen * 100 >= answered * 99) { p99 = b; break; }
    }
    printf("requests=%lu seconds=%.3f rps=%.0f lost=%lu errors=%lu p50_us=%lu p99_us=%lu "
           "bytes=%lu\n", answered, elapsed, (double)answered / elapsed, lost, errors, p50, p99,
           answered ? bytes / answered : 0);
    return 0;
}
