/*
 * A CoAP-over-TCP (RFC 8323) load generator for the aiolwm2m benchmarks.
 *
 * get mode: opens CONNS connections, sends a CSM on each, then keeps INFLIGHT GET requests
 * in flight per connection (closed loop): every response, matched by its 4-byte token,
 * triggers the next request at once. Frames are parsed by their Len/TKL header, so CSMs,
 * Pongs and responses of any length class are skipped or matched correctly.
 *   coap_tcp_loadgen get HOST PORT SECONDS CONNS INFLIGHT PATH [WARMUP_SECONDS]
 *   prints "requests=R seconds=S rps=X lost=0 p50_us=A p99_us=B"
 *
 * idle mode: opens COUNT connections, sends a CSM on each and waits until every one has
 * received the server's CSM, prints "ready COUNT", then holds them until stdin reaches EOF.
 *   coap_tcp_loadgen idle HOST PORT COUNT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_INFLIGHT 64
#define HIST_BUCKETS 200000 /* 1 us resolution up to 200 ms */
#define RXBUF 65536

typedef struct {
    uint32_t token;
    double sent_at;
} slot_t;

typedef struct {
    int fd;
    size_t have;
    uint8_t rx[RXBUF];
    slot_t slots[MAX_INFLIGHT];
    int got_csm;
} conn_t;

static unsigned long hist[HIST_BUCKETS + 1];
static uint32_t token_counter = 1;
/* CSM with no options: Len 0, TKL 0, code 7.01 */
static const uint8_t CSM[2] = {0x00, 0xE1};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_conn(struct addrinfo *res) {
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd < 0) {
        perror("socket");
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        perror("connect");
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (write(fd, CSM, sizeof CSM) != sizeof CSM) {
        perror("write CSM");
        close(fd);
        return -1;
    }
    return fd;
}

static size_t build_get(uint8_t *buf, uint32_t token, const char *path) {
    uint8_t body[256];
    size_t n = 0;
    unsigned last = 0;
    const char *p = path;
    while (*p == '/') p++;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        unsigned delta = 11 - last;
        last = 11;
        if (len < 13) {
            body[n++] = (delta << 4) | len;
        } else {
            body[n++] = (delta << 4) | 13;
            body[n++] = len - 13;
        }
        memcpy(body + n, p, len);
        n += len;
        p += len;
        while (*p == '/') p++;
    }
    size_t m = 0;
    if (n < 13) {
        buf[m++] = (n << 4) | 4;
    } else {
        buf[m++] = (13 << 4) | 4;
        buf[m++] = n - 13;
    }
    buf[m++] = 0x01; /* GET */
    memcpy(buf + m, &token, 4);
    m += 4;
    memcpy(buf + m, body, n);
    return m + n;
}

/* Length of the frame at buf (have bytes), or 0 when incomplete. */
static size_t frame_len(const uint8_t *buf, size_t have) {
    if (have < 1) return 0;
    unsigned len = buf[0] >> 4, tkl = buf[0] & 15;
    size_t hl = 1, body;
    if (len < 13) {
        body = len;
    } else if (len == 13) {
        hl = 2;
        if (have < 2) return 0;
        body = buf[1] + 13;
    } else if (len == 14) {
        hl = 3;
        if (have < 3) return 0;
        body = ((size_t)buf[1] << 8 | buf[2]) + 269;
    } else {
        hl = 5;
        if (have < 5) return 0;
        body = ((size_t)buf[1] << 24 | (size_t)buf[2] << 16 | (size_t)buf[3] << 8 | buf[4]) + 65805;
    }
    size_t total = hl + 1 + tkl + body;
    return have >= total ? total : 0;
}

static void send_request(conn_t *c, int i, const char *path, double t) {
    uint8_t buf[300];
    slot_t *s = &c->slots[i];
    s->token = token_counter++;
    s->sent_at = t;
    size_t n = build_get(buf, s->token, path);
    if (write(c->fd, buf, n) < 0 && errno != EAGAIN) perror("write");
}

static struct addrinfo *resolve(const char *host, const char *port) {
    struct addrinfo hints = {0}, *res;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        fprintf(stderr, "cannot resolve %s\n", host);
        exit(2);
    }
    return res;
}

static int run_get(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: %s get HOST PORT SECONDS CONNS INFLIGHT PATH [WARMUP]\n", argv[0]);
        return 2;
    }
    struct addrinfo *res = resolve(argv[2], argv[3]);
    double seconds = atof(argv[4]);
    int nconns = atoi(argv[5]);
    int inflight = atoi(argv[6]);
    const char *path = argv[7];
    double warmup = argc > 8 ? atof(argv[8]) : 1.0;
    if (nconns < 1 || inflight < 1 || inflight > MAX_INFLIGHT) {
        fprintf(stderr, "bad CONNS/INFLIGHT\n");
        return 2;
    }
    conn_t *conns = calloc(nconns, sizeof(conn_t));
    struct pollfd *pfds = calloc(nconns, sizeof(struct pollfd));
    srand((unsigned)time(NULL));
    token_counter = (uint32_t)rand();
    double start = now_s();
    for (int c = 0; c < nconns; c++) {
        conns[c].fd = open_conn(res);
        if (conns[c].fd < 0) return 1;
        pfds[c].fd = conns[c].fd;
        pfds[c].events = POLLIN;
        for (int i = 0; i < inflight; i++) send_request(&conns[c], i, path, start);
    }
    double measure_from = start + warmup;
    double stop = measure_from + seconds;
    unsigned long done = 0;
    for (;;) {
        int r = poll(pfds, nconns, 50);
        double t = now_s();
        if (t >= stop) break;
        if (r <= 0) continue;
        for (int c = 0; c < nconns; c++) {
            if (!(pfds[c].revents & (POLLIN | POLLERR | POLLHUP))) continue;
            conn_t *cn = &conns[c];
            ssize_t n = read(cn->fd, cn->rx + cn->have, RXBUF - cn->have);
            if (n <= 0) {
                if (n == 0 || errno != EAGAIN) {
                    fprintf(stderr, "connection %d closed by the server\n", c);
                    return 1;
                }
                continue;
            }
            cn->have += (size_t)n;
            size_t pos = 0, fl;
            while ((fl = frame_len(cn->rx + pos, cn->have - pos)) > 0) {
                const uint8_t *f = cn->rx + pos;
                unsigned tkl = f[0] & 15, len = f[0] >> 4;
                size_t hl = len < 13 ? 1 : len == 13 ? 2 : len == 14 ? 3 : 5;
                uint8_t code = f[hl];
                if (tkl == 4 && code >= 64 && code < 192) {
                    uint32_t token;
                    memcpy(&token, f + hl + 1, 4);
                    for (int i = 0; i < inflight; i++) {
                        slot_t *s = &cn->slots[i];
                        if (s->token == token) {
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
                pos += fl;
            }
            memmove(cn->rx, cn->rx + pos, cn->have - pos);
            cn->have -= pos;
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
    printf("requests=%lu seconds=%.3f rps=%.0f lost=0 p50_us=%lu p99_us=%lu\n", done, elapsed,
           done / elapsed, p50, p99);
    return 0;
}

static int run_idle(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s idle HOST PORT COUNT\n", argv[0]);
        return 2;
    }
    struct addrinfo *res = resolve(argv[2], argv[3]);
    int count = atoi(argv[4]);
    struct pollfd *pfds = calloc(count, sizeof(struct pollfd));
    for (int c = 0; c < count; c++) {
        pfds[c].fd = open_conn(res);
        if (pfds[c].fd < 0) return 1;
        pfds[c].events = POLLIN;
    }
    /* Wait for the server's CSM on every connection: then it has set each one up. */
    int waiting = count;
    uint8_t buf[512];
    double deadline = now_s() + 60;
    while (waiting > 0 && now_s() < deadline) {
        if (poll(pfds, count, 100) <= 0) continue;
        for (int c = 0; c < count; c++) {
            if (pfds[c].fd < 0 || !(pfds[c].revents & POLLIN)) continue;
            if (read(pfds[c].fd, buf, sizeof buf) > 0) {
                pfds[c].events = 0;
                pfds[c].fd = -pfds[c].fd - 1; /* poll ignores negative fds */
                waiting--;
            }
        }
    }
    if (waiting > 0) {
        fprintf(stderr, "%d connections got no CSM\n", waiting);
        return 1;
    }
    printf("ready %d\n", count);
    fflush(stdout);
    while (read(0, buf, sizeof buf) > 0) {
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "get") == 0) return run_get(argc, argv);
    if (argc > 1 && strcmp(argv[1], "idle") == 0) return run_idle(argc, argv);
    fprintf(stderr, "usage: %s get|idle ...\n", argv[0]);
    return 2;
}
