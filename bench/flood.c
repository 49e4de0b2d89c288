/* flood: a bounded UDP flood for the flood tests and benchmark (tests/integration/test_floods.py,
 * bench/flood.py). It stops by itself after SECONDS or COUNT datagrams, whichever comes first.
 *
 *   flood SOURCE DESTINATION PREFIXLEN PORT RATE SECONDS COUNT MODE [SEED]
 *
 * SOURCE       the address to send from (bound; "any" lets the kernel choose)
 * DESTINATION  an IPv4 or IPv6 address; with PREFIXLEN < 32 (128), each datagram goes to the
 *              next address of DESTINATION/PREFIXLEN in turn (host part 1, 2, ...; all-zero and
 *              all-one host parts skipped for IPv4): a stream of uncached destinations
 * PORT         the UDP destination port
 * RATE         datagrams per second (0: as fast as the machine goes)
 * SECONDS      at most this long
 * COUNT        at most this many datagrams (0: no limit)
 * MODE         "data": 64 zero bytes (a host's traffic);
 *              "garbage": LISP-control-looking junk to UDP 4342: a random type nibble in the
 *              first byte, random length 1-120, random bytes (truncated and nonsense messages)
 * SEED         for "garbage" (default 1), so a run can be repeated
 *
 * Prints one line: sent=N seconds=F pps=F
 *
 * Written for this project's tests; plain POSIX sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
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

static uint64_t rng_state = 1;
static uint32_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static void usage(void) {
    fprintf(stderr, "usage: flood SOURCE DESTINATION PREFIXLEN PORT RATE SECONDS COUNT "
                    "data|garbage [SEED]\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 9 || argc > 10)
        usage();
    const char *source = argv[1], *dest = argv[2], *mode = argv[8];
    int plen = atoi(argv[3]), port = atoi(argv[4]);
    double rate = atof(argv[5]), seconds = atof(argv[6]);
    long long count = atoll(argv[7]);
    int garbage = strcmp(mode, "garbage") == 0;
    if (!garbage && strcmp(mode, "data") != 0)
        usage();
    if (argc == 10)
        rng_state = strtoull(argv[9], NULL, 10) | 1;
    if (seconds <= 0 || seconds > 600) {
        fprintf(stderr, "flood: SECONDS must be in (0, 600]\n");
        return 2;
    }

    struct sockaddr_in d4 = {0};
    struct sockaddr_in6 d6 = {0};
    int family;
    if (inet_pton(AF_INET, dest, &d4.sin_addr) == 1) {
        family = AF_INET;
        d4.sin_family = AF_INET;
        d4.sin_port = htons(port);
        if (plen < 0 || plen > 32) usage();
    } else if (inet_pton(AF_INET6, dest, &d6.sin6_addr) == 1) {
        family = AF_INET6;
        d6.sin6_family = AF_INET6;
        d6.sin6_port = htons(port);
        if (plen < 0 || plen > 128) usage();
    } else {
        fprintf(stderr, "flood: %s is not an IP address\n", dest);
        return 2;
    }
    int fd = socket(family, SOCK_DGRAM, 0);
    if (fd < 0) { perror("flood: socket"); return 1; }
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    if (strcmp(source, "any") != 0) {
        int ok;
        if (family == AF_INET) {
            struct sockaddr_in s = {0};
            s.sin_family = AF_INET;
            ok = inet_pton(AF_INET, source, &s.sin_addr) == 1 &&
                 bind(fd, (struct sockaddr *)&s, sizeof s) == 0;
        } else {
            struct sockaddr_in6 s = {0};
            s.sin6_family = AF_INET6;
            ok = inet_pton(AF_INET6, source, &s.sin6_addr) == 1 &&
                 bind(fd, (struct sockaddr *)&s, sizeof s) == 0;
        }
        if (!ok) { fprintf(stderr, "flood: cannot send from %s\n", source); return 1; }
    }

    /* IPv4: the host part counts up; IPv6: the low 32 bits of the host part do */
    int host_bits = (family == AF_INET ? 32 : 128) - plen;
    uint32_t span = host_bits >= 32 ? 0xFFFFFFFFu : (host_bits == 0 ? 1u : (1u << host_bits));
    uint32_t base4 = ntohl(d4.sin_addr.s_addr);
    if (family == AF_INET && host_bits > 0 && host_bits < 32)
        base4 &= ~(span - 1);
    uint8_t base6[16];
    memcpy(base6, &d6.sin6_addr, 16);

    unsigned char buf[128];
    memset(buf, 0, sizeof buf);
    double start = now(), end = start + seconds, gap = rate > 0 ? 1.0 / rate : 0;
    double next = start;
    long long sent = 0;
    uint32_t host = 0;
    while ((count == 0 || sent < count)) {
        double t = now();
        if (t >= end)
            break;
        if (gap > 0) {
            if (t < next) {
                double wait = next - t;
                if (wait > 0.0005) {
                    struct timespec ts = {0, (long)(wait * 1e9)};
                    nanosleep(&ts, NULL);
                }
                continue;
            }
            next += gap;
        }
        if (span > 1) {
            host = host + 1 >= span - (family == AF_INET ? 1 : 0) ? 1 : host + 1;
            if (family == AF_INET) {
                d4.sin_addr.s_addr = htonl(base4 | host);
            } else {
                uint32_t low;
                memcpy(&low, base6 + 12, 4);
                low = htonl(ntohl(low) + host);
                memcpy(((uint8_t *)&d6.sin6_addr) + 12, &low, 4);
            }
        }
        size_t len = 64;
        if (garbage) {
            len = 1 + rnd() % 120;
            for (size_t i = 0; i < len; i++)
                buf[i] = (unsigned char)rnd();
        }
        ssize_t r = family == AF_INET
            ? sendto(fd, buf, len, 0, (struct sockaddr *)&d4, sizeof d4)
            : sendto(fd, buf, len, 0, (struct sockaddr *)&d6, sizeof d6);
        if (r < 0) {
            if (errno == ENOBUFS || errno == EAGAIN || errno == EPERM || errno == ECONNREFUSED)
                continue; /* a full queue or a refused neighbour: try on */
            perror("flood: sendto");
            return 1;
        }
        sent++;
    }
    double took = now() - start;
    printf("sent=%lld seconds=%.3f pps=%.0f\n", sent, took, took > 0 ? sent / took : 0.0);
    return 0;
}
