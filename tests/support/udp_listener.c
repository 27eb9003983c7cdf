/* udp-listener PORT [ADDR]: bind a UDP socket (default 0.0.0.0, IPv6 too) and
 * echo every datagram back to its sender. Built static for the busybox test
 * image, whose busybox has no UDP server applet. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PORT [ADDR]\n", argv[0]);
        return 2;
    }
    const char *host = argc == 3 ? argv[2] : "0.0.0.0";
    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(atoi(argv[1]))};
    int v4 = inet_pton(AF_INET, host, &in4.sin_addr) == 1;
    if (!v4 && inet_pton(AF_INET6, host, &in6.sin6_addr) != 1) {
        fprintf(stderr, "udp-listener: not an IP address: %s\n", host);
        return 2;
    }
    int fd = socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0 || (v4 ? bind(fd, (struct sockaddr *)&in4, sizeof in4)
                      : bind(fd, (struct sockaddr *)&in6, sizeof in6)) < 0) {
        perror("udp-listener");
        return 1;
    }
    char buf[65536];
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &peer_len);
        if (n >= 0)
            sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, peer_len);
    }
}
