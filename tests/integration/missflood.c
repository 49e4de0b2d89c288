/* missflood: a bounded flood of cache misses for tests/integration/test_miss_fairness.py.
 *
 *   missflood SOURCE FIRST_DESTINATION COUNT SECONDS
 *
 * Sends small UDP datagrams (port 9) from SOURCE (an IPv4 address of this host) to COUNT
 * consecutive IPv4 addresses starting at FIRST_DESTINATION, round-robin, as fast as the socket
 * takes them (sendmmsg, 64 at a time), and stops by itself after SECONDS. Prints one line:
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
    if (argc != 5) {
        fprintf(stderr, "usage: missflood SOURCE FIRST_DESTINATION COUNT SECONDS\n");
        return 2;
    }
    struct sockaddr_in src = {.sin_family = AF_INET};
    struct in_addr first;
    if (inet_pton(AF_INET, argv[1], &src.sin_addr) != 1 ||
        inet_pton(AF_INET, argv[2], &first) != 1) {
        fprintf(stderr, "missflood: not IPv4 addresses\n");
        return 2;
    }
    long count = atol(argv[3]);
    double seconds = atof(argv[4]);
    if (count < 1 || seconds <= 0 || seconds > 60) {
        fprintf(stderr, "missflood: COUNT >= 1, 0 < SECONDS <= 60\n");
        return 2;
    }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&src, sizeof src) < 0) {
        perror("missflood: bind");
        return 1;
    }
    static struct sockaddr_in dst[BATCH];
    static struct mmsghdr msgs[BATCH];
    static struct iovec iov[BATCH];
    static char payload[18] = "lisp-app miss test";
    uint32_t base = ntohl(first.s_addr);
    long next = 0, sent = 0;
    double start = now(), end = start + seconds;
    while (now() < end) {
        for (int i = 0; i < BATCH; i++) {
            dst[i].sin_family = AF_INET;
            dst[i].sin_port = htons(9);
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
    }
    printf("sent=%ld seconds=%.3f\n", sent, now() - start);
    return 0;
}
