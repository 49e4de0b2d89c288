/* udpflood: a bounded UDP flood for tests/integration/test_miss_fairness.py and bench/flood.py (cache misses to
 * many destinations; garbage at an RLOC's control port).
 *
 *   udpflood SOURCE FIRST_DESTINATION COUNT SECONDS [PORT [RATE]]
 *
 * Sends small UDP datagrams (to PORT, default 9; their payload is no LISP message) from SOURCE
 * (an IPv4 address of this host) to COUNT consecutive IPv4 addresses starting at
 * FIRST_DESTINATION, round-robin, as fast as the socket takes them (sendmmsg, 64 at a time) or
 * at most RATE a second, and stops by itself after SECONDS. Prints one line:
 *   sent=N seconds=F
 * Written for this project's tests; plain POSIX/Linux sockets. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 5 || argc > 7) {
        fprintf(stderr, "usage: udpflood SOURCE FIRST_DESTINATION COUNT SECONDS [PORT [RATE]]\n");
        return 2;
    }
    struct sockaddr_in src = {.sin_family = AF_INET};
    struct in_addr first;
    if (inet_pton(AF_INET, argv[1], &src.sin_addr) != 1 ||
        inet_pton(AF_INET, argv[2], &first) != 1) {
        fprintf(stderr, "udpflood: not IPv4 addresses\n");
        return 2;
    }
    long count = atol(argv[3]);
    double seconds = atof(argv[4]);
    int port = argc >= 6 ? atoi(argv[5]) : 9;
    double rate = argc == 7 ? atof(argv[6]) : 0;  /* 0: as fast as it goes */
    if (count < 1 || seconds <= 0 || seconds > 60 || port < 1 || port > 65535 || rate < 0) {
        fprintf(stderr, "udpflood: COUNT >= 1, 0 < SECONDS <= 60, 0 < PORT < 65536, RATE >= 0\n");
        return 2;
    }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&src, sizeof src) < 0) {
        perror("udpflood: bind");
        return 1;
    }
    static struct sockaddr_in dst[BATCH];
    static struct mmsghdr msgs[BATCH];
    static struct iovec iov[BATCH];
    static char payload[18] = "lisp-app flood";
    uint32_t base = ntohl(first.s_addr);
    long next = 0, sent = 0;
    double start = now(), end = start + seconds;
    while (now() < end) {
        for (int i = 0; i < BATCH; i++) {
            dst[i].sin_family = AF_INET;
            dst[i].sin_port = htons(port);
            dst[i].sin_addr.s_addr = htonl(base + (uint32_t)(next++ % count));
            iov[i].iov_base = payload;
            iov[i].iov_len = sizeof payload;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_name = &dst[i];
            msgs[i].msg_hdr.msg_namelen = sizeof dst[i];
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = sendmmsg(s, msgs, BATCH, 0);
        if (n > 0)
            sent += n;
        if (rate > 0) {  /* wait until this batch's share of the rate has passed */
            double ahead = start + (double)next / rate - now();
            if (ahead > 0) {
                struct timespec ts = {(time_t)ahead, (long)((ahead - (time_t)ahead) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
    }
    printf("sent=%ld seconds=%.3f\n", sent, now() - start);
    return 0;
}
