/*
 * LwM2M registration load generator for the aiolwm2m benchmarks.
 *
 * Phase 1 registers N distinct endpoints (POST /rd?ep=bench-<i>&lt=..&lwm2m=1.1&b=U with a
 * link-format object list), keeping INFLIGHT requests outstanding across CONNS sockets, and
 * remembers the Location-Path of each 2.01. Phase 2 sends one Update (POST /rd/<id>) per
 * endpoint, from the socket that registered it (the server accepts a NoSec Update only from
 * the registration's own address). Requests that get no answer within 2 s are sent again
 * (same message ID, as a CoAP retransmission would be).
 *
 * Usage: rd_loadgen HOST PORT N CONNS INFLIGHT [rd]
 * With "rd", phase 1 makes generic Resource Directory registrations instead (POST
 * /rd?ep=bench-<i>&d=bench&lt=.. with five resource links; bench/bench_rd.py).
 * Prints one line per phase: "phase=register n=N seconds=S rate=R p50_us=A p99_us=B failed=F"
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

#define MAX_CONNS 256
#define HIST_BUCKETS 2000000 /* 1 us resolution up to 2 s */

typedef struct {
    int conn;
    uint16_t mid;
    uint32_t token;
    double sent_at;
    int done;
    int tries;
    char location[24];
} req_t;

static int fds[MAX_CONNS];
/* Message IDs run sequentially per socket: random ones would collide within the server's
 * deduplication window and be answered with the cached reply of an older request. */
static uint16_t next_mid[MAX_CONNS];
static unsigned long *hist;
static req_t *reqs;
static const char *LINKS = "</>;rt=\"oma.lwm2m\";ct=\"60 110 112 11542\",</1>;ver=1.1,</1/0>,"
                           "</3/0>,</4/0>,</5/0>,</3303/0>";

static int generic = 0;
static const char *RD_LINKS = "</s/0>;rt=\"temperature\";if=\"core.s\","
                              "</s/1>;rt=\"humidity\";if=\"core.s\",</s/2>;rt=\"pressure\","
                              "</a/0>;rt=\"light\";if=\"core.a\",</cfg>;ct=40";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t put_option(uint8_t *buf, unsigned *last, unsigned num, const char *val,
                         size_t len) {
    size_t n = 0;
    unsigned delta = num - *last;
    *last = num;
    uint8_t dn = delta < 13 ? delta : 13;
    uint8_t ln = len < 13 ? len : (len < 269 ? 13 : 14);
    buf[n++] = (dn << 4) | ln;
    if (dn == 13) buf[n++] = delta - 13;
    if (ln == 13) buf[n++] = len - 13;
    if (ln == 14) { buf[n++] = (len - 269) >> 8; buf[n++] = (len - 269) & 0xff; }
    memcpy(buf + n, val, len);
    return n + len;
}

static size_t build(uint8_t *buf, int phase, long i, req_t *r) {
    size_t n = 0;
    unsigned last = 0;
    buf[n++] = 0x40 | 4;
    buf[n++] = 0x02; /* POST */
    buf[n++] = r->mid >> 8;
    buf[n++] = r->mid & 0xff;
    memcpy(buf + n, &r->token, 4);
    n += 4;
    n += put_option(buf + n, &last, 11, "rd", 2);
    if (phase == 0 && generic) {
        char q[64];
        int l = snprintf(q, sizeof q, "ep=bench-%ld", i);
        n += put_option(buf + n, &last, 12, "\x28", 1); /* Content-Format 40 */
        n += put_option(buf + n, &last, 15, q, l);
        n += put_option(buf + n, &last, 15, "d=bench", 7);
        n += put_option(buf + n, &last, 15, "lt=86400", 8);
        buf[n++] = 0xff;
        memcpy(buf + n, RD_LINKS, strlen(RD_LINKS));
        n += strlen(RD_LINKS);
    } else if (phase == 0) {
        char q[64];
        int l = snprintf(q, sizeof q, "ep=bench-%ld", i);
        n += put_option(buf + n, &last, 12, "\x28", 1); /* Content-Format 40 */
        n += put_option(buf + n, &last, 15, q, l);
        n += put_option(buf + n, &last, 15, "lt=86400", 8);
        n += put_option(buf + n, &last, 15, "lwm2m=1.1", 9);
        n += put_option(buf + n, &last, 15, "b=U", 3);
        buf[n++] = 0xff;
        memcpy(buf + n, LINKS, strlen(LINKS));
        n += strlen(LINKS);
    } else {
        /* location is "rd/<id>": Uri-Path rd then <id> */
        const char *id = r->location + 3;
        n += put_option(buf + n, &last, 11, id, strlen(id));
    }
    return n;
}

/* Location-Path segments joined with '/', e.g. "rd/AbC123". */
static void read_location(const uint8_t *b, ssize_t len, char *out, size_t outlen) {
    size_t pos = 4 + (b[0] & 0x0f), o = 0;
    unsigned num = 0;
    out[0] = 0;
    while ((ssize_t)pos < len && b[pos] != 0xff) {
        unsigned d = b[pos] >> 4, l = b[pos] & 0x0f;
        pos++;
        if (d == 13) d = b[pos++] + 13;
        else if (d == 14) { d = ((b[pos] << 8) | b[pos + 1]) + 269; pos += 2; }
        if (l == 13) l = b[pos++] + 13;
        else if (l == 14) { l = ((b[pos] << 8) | b[pos + 1]) + 269; pos += 2; }
        num += d;
        if (num == 8 && o + l + 2 < outlen) {
            if (o) out[o++] = '/';
            memcpy(out + o, b + pos, l);
            o += l;
            out[o] = 0;
        }
        pos += l;
    }
}

static void run_phase(int phase, long N, int nconns, int inflight, struct pollfd *pfds) {
    memset(hist, 0, sizeof(unsigned long) * (HIST_BUCKETS + 1));
    long next = 0, done = 0, failed = 0;
    long *slot_req = malloc(sizeof(long) * inflight);
    uint8_t buf[2048];
    double start = now_s();
    for (int s = 0; s < inflight && next < N; s++) {
        req_t *r = &reqs[next];
        if (phase == 0) r->conn = s % nconns; /* an Update goes from its Register's socket */
        r->mid = next_mid[r->conn]++;
        r->token = ((uint32_t)rand() << 8) ^ (uint32_t)next;
        r->sent_at = now_s();
        r->done = 0;
        r->tries = 1;
        slot_req[s] = next;
        size_t n = build(buf, phase, next, r);
        send(fds[r->conn], buf, n, 0);
        next++;
    }
    double last_sweep = start;
    while (done + failed < N) {
        int rc = poll(pfds, nconns, 20);
        double t = now_s();
        if (rc > 0) {
            for (int c = 0; c < nconns; c++) {
                if (!(pfds[c].revents & POLLIN)) continue;
                for (;;) {
                    ssize_t n = recv(fds[c], buf, sizeof buf, 0);
                    if (n < 0) break;
                    if (n < 8 || (buf[0] & 0x0f) != 4 || buf[1] == 0) continue;
                    uint32_t token;
                    memcpy(&token, buf + 4, 4);
                    for (int s = 0; s < inflight; s++) {
                        long i = slot_req[s];
                        if (i < 0) continue;
                        req_t *r = &reqs[i];
                        if (r->token != token || r->done) continue;
                        r->done = 1;
                        int ok = phase == 0 ? buf[1] == 0x41 : buf[1] == 0x44;
                        if (ok) {
                            done++;
                            long us = (long)((t - r->sent_at) * 1e6);
                            hist[us < HIST_BUCKETS ? us : HIST_BUCKETS]++;
                            if (phase == 0) read_location(buf, n, r->location, sizeof r->location);
                        } else {
                            failed++;
                            fprintf(stderr, "request %ld answered %d.%02d\n", i, buf[1] >> 5,
                                    buf[1] & 31);
                        }
                        slot_req[s] = -1;
                        if (next < N) {
                            req_t *q = &reqs[next];
                            if (phase == 0) q->conn = s % nconns;
                            q->mid = next_mid[q->conn]++;
                            q->token = ((uint32_t)rand() << 8) ^ (uint32_t)next;
                            q->sent_at = t;
                            q->done = 0;
                            q->tries = 1;
                            slot_req[s] = next;
                            size_t m = build(buf, phase, next, q);
                            send(fds[q->conn], buf, m, 0);
                            next++;
                        }
                        break;
                    }
                }
            }
        }
        if (t - last_sweep > 0.25) {
            last_sweep = t;
            for (int s = 0; s < inflight; s++) {
                long i = slot_req[s];
                if (i < 0) continue;
                req_t *r = &reqs[i];
                if (!r->done && t - r->sent_at > 2.0 * r->tries) {
                    if (r->tries >= 5) {
                        r->done = 1;
                        failed++;
                        slot_req[s] = -1;
                        fprintf(stderr, "request %ld unanswered after %d tries\n", i, r->tries);
                        continue;
                    }
                    r->tries++;
                    size_t m = build(buf, phase, i, r);
                    send(fds[r->conn], buf, m, 0);
                }
            }
        }
    }
    double elapsed = now_s() - start;
    unsigned long acc = 0, p50 = 0, p99 = 0;
    int have50 = 0;
    for (int i = 0; i <= HIST_BUCKETS; i++) {
        acc += hist[i];
        if (!have50 && acc * 2 >= (unsigned long)done) { p50 = i; have50 = 1; }
        if (acc * 100 >= (unsigned long)done * 99) { p99 = i; break; }
    }
    printf("phase=%s n=%ld seconds=%.3f rate=%.0f p50_us=%lu p99_us=%lu failed=%ld\n",
           phase == 0 ? "register" : "update", done, elapsed, done / elapsed, p50, p99, failed);
    fflush(stdout);
    free(slot_req);
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s HOST PORT N CONNS INFLIGHT\n", argv[0]);
        return 2;
    }
    long N = atol(argv[3]);
    int nconns = atoi(argv[4]);
    int inflight = atoi(argv[5]);
    generic = argc > 6 && strcmp(argv[6], "rd") == 0;
    if (nconns < 1 || nconns > MAX_CONNS || inflight < nconns) {
        fprintf(stderr, "bad CONNS/INFLIGHT\n");
        return 2;
    }
    struct addrinfo hints = {0}, *res;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(argv[1], argv[2], &hints, &res) != 0) return 2;
    struct pollfd pfds[MAX_CONNS];
    srand((unsigned)time(NULL));
    for (int c = 0; c < nconns; c++) {
        fds[c] = socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        int sz = 1 << 20;
        setsockopt(fds[c], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        if (connect(fds[c], res->ai_addr, res->ai_addrlen) < 0) { perror("connect"); return 1; }
        next_mid[c] = (uint16_t)rand();
        pfds[c].fd = fds[c];
        pfds[c].events = POLLIN;
    }
    hist = calloc(HIST_BUCKETS + 1, sizeof(unsigned long));
    reqs = calloc(N, sizeof(req_t));
    run_phase(0, N, nconns, inflight, pfds);
    /* the driver samples the server's memory between the phases */
    printf("registered\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 0;
    run_phase(1, N, nconns, inflight, pfds);
    return 0;
}
