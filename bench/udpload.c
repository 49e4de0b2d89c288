/* udpload: the load generator of bench/msmr.py, and a UDP echo server for its client ceiling.
 *
 *   udpload client SERVER PORT REQUESTS_FILE WINDOW SECONDS EXPECT_TYPE [LOCAL_PORT]
 *   udpload echo ADDRESS PORT
 *
 * client: sends the datagrams of REQUESTS_FILE (each a 2-byte big-endian length, then the bytes)
 * round-robin to SERVER:PORT from one UDP socket (bound to LOCAL_PORT when given), keeping at most WINDOW unanswered, for SECONDS.
 * An answer is any datagram received; a valid one is a LISP control message of type EXPECT_TYPE
 * (the top 4 bits of its first byte). When nothing comes for 1 s the outstanding requests are
 * written off as lost and the window refilled. Prints one line:
 *   sent=N answers=N valid=N lost=N seconds=F
 * echo: sends every datagram received back to where it came from, until killed.
 *
 * Written for this project's benchmark; plain POSIX sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int resolve(const char *host, int port, struct sockaddr_storage *out, socklen_t *len) {
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof *v4;
        return AF_INET;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof *v6;
        return AF_INET6;
    }
    fprintf(stderr, "udpload: %s is not an IP address\n", host);
    exit(2);
}

static int echo(const char *host, int port) {
    struct sockaddr_storage addr, peer;
    socklen_t len, plen;
    int family = resolve(host, port, &addr, &len);
    int s = socket(family, SOCK_DGRAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&addr, len) < 0) {
        perror("udpload echo: bind");
        return 1;
    }
    unsigned char buf[65536];
    for (;;) {
        plen = sizeof peer;
        ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&peer, &plen);
        if (n >= 0)
            sendto(s, buf, n, 0, (struct sockaddr *)&peer, plen);
    }
}

static int client(const char *host, int port, const char *path, int window, double seconds,
                  int expect, int local_port) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror("udpload client: requests file");
        return 1;
    }
    size_t cap = 1024, count = 0;
    unsigned char **req = malloc(cap * sizeof *req);
    size_t *rlen = malloc(cap * sizeof *rlen);
    unsigned char hdr[2];
    while (fread(hdr, 1, 2, f) == 2) {
        size_t n = (size_t)hdr[0] << 8 | hdr[1];
        if (count == cap) {
            cap *= 2;
            req = realloc(req, cap * sizeof *req);
            rlen = realloc(rlen, cap * sizeof *rlen);
        }
        req[count] = malloc(n);
        if (fread(req[count], 1, n, f) != n) {
            fprintf(stderr, "udpload client: truncated requests file\n");
            return 1;
        }
        rlen[count++] = n;
    }
    fclose(f);
    if (count == 0) {
        fprintf(stderr, "udpload client: no requests\n");
        return 1;
    }
    struct sockaddr_storage addr;
    socklen_t len;
    int family = resolve(host, port, &addr, &len);
    int s = socket(family, SOCK_DGRAM, 0);
    if (local_port > 0) {
        struct sockaddr_storage local;
        socklen_t llen;
        resolve(family == AF_INET ? "0.0.0.0" : "::", local_port, &local, &llen);
        if (bind(s, (struct sockaddr *)&local, llen) < 0) {
            perror("udpload client: bind");
            return 1;
        }
    }
    if (s < 0 || connect(s, (struct sockaddr *)&addr, len) < 0) {
        perror("udpload client: connect");
        return 1;
    }
    long sent = 0, answers = 0, valid = 0, lost = 0, outstanding = 0;
    size_t next = 0;
    unsigned char buf[65536];
    double start = now(), end = start + seconds, last_answer = start;
    struct pollfd pfd = {.fd = s, .events = POLLIN};
    while (now() < end) {
        while (outstanding < window) {
            if (send(s, req[next], rlen[next], 0) < 0 && errno != ECONNREFUSED)
                break;
            next = (next + 1) % count;
            outstanding++;
            sent++;
        }
        int ready = poll(&pfd, 1, 100);
        if (ready > 0) {
            for (;;) {
                ssize_t n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
                if (n < 0)
                    break;
                answers++;
                if (outstanding > 0)
                    outstanding--;
                if (n > 0 && buf[0] >> 4 == expect)
                    valid++;
                last_answer = now();
            }
        } else if (now() - last_answer > 1.0) {
            lost += outstanding;
            outstanding = 0;
            last_answer = now();
        }
    }
    printf("sent=%ld answers=%ld valid=%ld lost=%ld seconds=%.3f\n", sent, answers, valid, lost,
           now() - start);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "echo") == 0)
        return echo(argv[2], atoi(argv[3]));
    if ((argc == 8 || argc == 9) && strcmp(argv[1], "client") == 0)
        return client(argv[2], atoi(argv[3]), argv[4], atoi(argv[5]), atof(argv[6]),
                      atoi(argv[7]), argc == 9 ? atoi(argv[8]) : 0);
    fprintf(stderr, "usage: udpload client SERVER PORT FILE WINDOW SECONDS TYPE | "
                    "udpload echo ADDRESS PORT\n");
    return 2;
}
