/*
 * A reference point for `npm run bench`, not a product: a TCP relay in C that passes bytes both ways between each
 * client and its own connection to 127.0.0.1:<upstream port>, without reading them (no HTTP). What it adds in front
 * of the provider node is what one more process on a loopback path costs this machine (two wake-ups, two socket
 * reads and writes), the floor under any proxy. run.ts compiles it with `cc` when there is one.
 *
 * Usage: byte-relay <upstream port>; prints the port it listens on (127.0.0.1, picked by the system), then serves
 * until killed. One thread, epoll, non-blocking sockets with TCP_NODELAY.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 65536

/* The other end of each relayed connection, by file descriptor (-1: none). */
static int peer[MAX_FDS];

static int prepare(int fd) {
  int one = 1;
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) return -1;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static void hang_up(int fd) {
  int other = peer[fd];
  peer[fd] = -1;
  close(fd);
  if (other >= 0) {
    peer[other] = -1;
    close(other);
  }
}

/* Writes all of buf to fd, waiting for room if the socket is full (replies here are small: it rarely is). */
static int write_all(int fd, const char *buf, ssize_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, (size_t)len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return -1;
    }
    buf += n;
    len -= n;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: byte-relay <upstream port>\n");
    return 2;
  }
  int upstream = atoi(argv[1]);
  for (int i = 0; i < MAX_FDS; i++) peer[i] = -1;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in at = loopback(0);
  socklen_t len = sizeof at;
  if (listener < 0 || bind(listener, (struct sockaddr *)&at, sizeof at) || listen(listener, 1024) ||
      getsockname(listener, (struct sockaddr *)&at, &len)) {
    perror("byte-relay: listen");
    return 1;
  }
  printf("%d\n", ntohs(at.sin_port));
  fflush(stdout);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  struct epoll_event ready[64];
  static char buf[65536];
  for (;;) {
    int n = epoll_wait(ep, ready, 64, -1);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; i++) {
      int fd = ready[i].data.fd;
      if (fd == listener) {
        int client = accept(listener, NULL, NULL);
        if (client < 0) continue;
        int server = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in to = loopback(upstream);
        if (client >= MAX_FDS || server < 0 || server >= MAX_FDS ||
            connect(server, (struct sockaddr *)&to, sizeof to) || prepare(client) || prepare(server)) {
          close(client);
          if (server >= 0) close(server);
          continue;
        }
        peer[client] = server;
        peer[server] = client;
        ev.data.fd = client;
        epoll_ctl(ep, EPOLL_CTL_ADD, client, &ev);
        ev.data.fd = server;
        epoll_ctl(ep, EPOLL_CTL_ADD, server, &ev);
        continue;
      }
      if (peer[fd] < 0) continue; /* hung up earlier in this batch */
      for (;;) {
        ssize_t got = read(fd, buf, sizeof buf);
        if (got > 0) {
          if (write_all(peer[fd], buf, got) < 0) {
            hang_up(fd);
            break;
          }
          continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) break;
        hang_up(fd); /* end of stream or error: both sides go */
        break;
      }
    }
  }
}
