/*
 * A closed-loop HTTP/1.1 load generator for bench/bench_rest.py.
 *
 * Opens CONNS keep-alive connections and keeps one GET in flight on each: every complete
 * response sends the next request at once. Requests go round the paths of PATHS_FILE (one
 * per line), so N devices are read in turn. Responses are framed by Content-Length or by
 * chunked transfer coding; a connection the server closes is reopened (counted).
 *   http_loadgen HOST PORT SECONDS CONNS PATHS_FILE TOKEN [WARMUP_SECONDS]
 *   prints "requests=R seconds=S rps=X ok=R2 errors=E reconnects=C p50_us=A p99_us=B
 *           max_us=M"
 * ok counts 2xx answers; errors counts other statuses. Latency is measured from the write
 * of a request to the end of its response, after the warm-up, in 10 us buckets up to 2 s.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define RXBUF 262144
#define BUCKET_US 10
#define HIST_BUCKETS 200000 /* 10 us resolution up to 2 s */

typedef struct {
    int fd;
    size_t have;
    char *rx;
    double sent_at;
    int busy;
} conn_t;

static unsigned long hist[HIST_BUCKETS + 1];
static char **paths;
static size_t npaths, next_path;
static char host_header[300];
static char auth_header[600];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_conn(struct addrinfo *res) {
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_request(conn_t *c) {
    char req[4096];
    const char *path = paths[next_path++ % npaths];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n%sAccept: */*\r\n\r\n",
                     path, host_header, auth_header);
    if (n <= 0 || (size_t)n >= sizeof req) return -1;
    c->sent_at = now_s();
    c->busy = 1;
    for (int off = 0; off < n;) {
        ssize_t w = write(c->fd, req + off, n - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        off += w;
    }
    return 0;
}

/* The length of a complete chunked body starting at p (len bytes available), or 0 while
 * it is incomplete. */
static size_t chunked_length(const char *p, size_t len) {
    size_t off = 0;
    for (;;) {
        const char *eol = memmem(p + off, len - off, "\r\n", 2);
        if (eol == NULL) return 0;
        size_t size = strtoul(p + off, NULL, 16);
        off = (size_t)(eol - p) + 2;
        if (size == 0) {
            const char *end = memmem(p + off - 2, len - (off - 2), "\r\n\r\n", 4);
            return end ? (size_t)(end - p) + 4 : 0;
        }
        if (len < off + size + 2) return 0;
        off += size + 2;
    }
}

/* If rx holds a complete response: its total length and status; else 0. */
static size_t complete_response(const char *rx, size_t have, int *status) {
    const char *end = memmem(rx, have, "\r\n\r\n", 4);
    if (end == NULL) return 0;
    size_t head = (size_t)(end - rx) + 4;
    *status = atoi(rx + 9);
    long content_length = -1;
    int chunked = 0;
    for (const char *line = memchr(rx, '\n', head) + 1; line < rx + head;) {
        const char *eol = memchr(line, '\n', rx + head - line);
        if (eol == NULL) break;
        if (strncasecmp(line, "content-length:", 15) == 0) content_length = atol(line + 15);
        else if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
            const char *v = line + 18;
            while (v < eol && isspace((unsigned char)*v)) v++;
            chunked = strncasecmp(v, "chunked", 7) == 0;
        }
        line = eol + 1;
    }
    if (chunked) {
        size_t body = chunked_length(rx + head, have - head);
        return body ? head + body : 0;
    }
    if (content_length < 0) content_length = 0;
    return have >= head + (size_t)content_length ? head + (size_t)content_length : 0;
}

static void load_paths(const char *file) {
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        perror(file);
        exit(2);
    }
    char line[2048];
    size_t cap = 16;
    paths = malloc(cap * sizeof *paths);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) continue;
        if (npaths == cap) paths = realloc(paths, (cap *= 2) * sizeof *paths);
        paths[npaths++] = strdup(line);
    }
    fclose(f);
    if (npaths == 0) {
        fprintf(stderr, "%s: no paths\n", file);
        exit(2);
    }
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s HOST PORT SECONDS CONNS PATHS_FILE TOKEN [WARMUP]\n",
                argv[0]);
        return 2;
    }
    const char *host = argv[1], *port = argv[2];
    double seconds = atof(argv[3]);
    int nconns = atoi(argv[4]);
    double warmup = argc > 7 ? atof(argv[7]) : 1.0;
    if (nconns < 1 || nconns > MAX_CONNS) {
        fprintf(stderr, "CONNS must be 1..%d\n", MAX_CONNS);
        return 2;
    }
    load_paths(argv[5]);
    snprintf(host_header, sizeof host_header, "%s:%s", host, port);
    if (argv[6][0]) snprintf(auth_header, sizeof auth_header,
                             "Authorization: Bearer %s\r\n", argv[6]);

    struct addrinfo hints = {0}, *res;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        fprintf(stderr, "cannot resolve %s\n", host);
        return 2;
    }
    conn_t *conns = calloc(nconns, sizeof *conns);
    struct pollfd *pfds = calloc(nconns, sizeof *pfds);
    for (int i = 0; i < nconns; i++) {
        conns[i].rx = malloc(RXBUF);
        conns[i].fd = open_conn(res);
        if (conns[i].fd < 0 || send_request(&conns[i]) < 0) {
            perror("connect");
            return 1;
        }
    }

    double start = now_s(), measure_from = start + warmup, end = measure_from + seconds;
    unsigned long requests = 0, ok = 0, errors = 0, reconnects = 0;
    for (;;) {
        double t = now_s();
        if (t >= end) break;
        for (int i = 0; i < nconns; i++) {
            pfds[i].fd = conns[i].fd;
            pfds[i].events = POLLIN;
        }
        int ready = poll(pfds, nconns, 100);
        if (ready < 0) {
            if (errno == EINTR) continue;
            perror("poll");
            return 1;
        }
        for (int i = 0; i < nconns && ready > 0; i++) {
            if (!pfds[i].revents) continue;
            ready--;
            conn_t *c = &conns[i];
            ssize_t r = read(c->fd, c->rx + c->have, RXBUF - c->have);
            if (r <= 0) {
                if (r < 0 && errno == EINTR) continue;
                /* Closed by the server: reopen and resend the request it dropped. */
                close(c->fd);
                c->have = 0;
                reconnects++;
                c->fd = open_conn(res);
                if (c->fd < 0 || send_request(c) < 0) {
                    perror("reconnect");
                    return 1;
                }
                continue;
            }
            c->have += (size_t)r;
            int status = 0;
            size_t used;
            while (c->busy && (used = complete_response(c->rx, c->have, &status)) > 0) {
                double done = now_s();
                if (c->sent_at >= measure_from && done < end) {
                    unsigned long us = (unsigned long)((done - c->sent_at) * 1e6);
                    unsigned long b = us / BUCKET_US;
                    hist[b > HIST_BUCKETS ? HIST_BUCKETS : b]++;
                    requests++;
                    if (status >= 200 && status < 300) ok++;
                    else errors++;
                }
                memmove(c->rx, c->rx + used, c->have - used);
                c->have -= used;
                c->busy = 0;
                if (send_request(c) < 0) {
                    perror("write");
                    return 1;
                }
            }
            if (c->have == RXBUF) {
                fprintf(stderr, "response larger than %d bytes\n", RXBUF);
                return 1;
            }
        }
    }
    double elapsed = now_s() - measure_from;
    if (elapsed > seconds) elapsed = seconds;
    unsigned long p50 = 0, p99 = 0, max = 0, seen = 0;
    int have50 = 0, have99 = 0;
    for (unsigned long b = 0; b <= HIST_BUCKETS; b++) {
        if (!hist[b]) continue;
        seen += hist[b];
        max = b;
        if (!have50 && seen * 100 >= requests * 50) { p50 = b; have50 = 1; }
        if (!have99 && seen * 100 >= requests * 99) { p99 = b; have99 = 1; }
    }
    printf("requests=%lu seconds=%.3f rps=%.1f ok=%lu errors=%lu reconnects=%lu p50_us=%lu "
           "p99_us=%lu max_us=%lu\n", requests, elapsed, requests / elapsed, ok, errors,
           reconnects, p50 * BUCKET_US, p99 * BUCKET_US, (max + 1) * BUCKET_US);
    return 0;
}
