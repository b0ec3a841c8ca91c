/* The POP3 bench's client: logs in, RETRs messages 1..N, QUITs, and prints "<messages> <octets after
   un-stuffing>". With WINDOW 1 each RETR waits for its whole reply, as fetchmail and getmail do; with a larger
   WINDOW up to that many RETRs are under way at once (PIPELINING, RFC 2449). Written in C so that the client's
   own cost is small next to the servers' it measures. Once logged in it prints "ready" and waits for a line
   on standard input, so that the bench times the RETRs alone (a login costs Tern an argon2id hash, and
   Dovecot's test passwords are plain).
   Usage: pop3_retr_client PORT USER PASS N [WINDOW] */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char buffer[1 << 22];
static size_t start; /* first unread octet */
static size_t length; /* end of what was received */
static int sock;

static void fail(const char *what) {
  fprintf(stderr, "pop3_retr_client: %s\n", what);
  exit(1);
}

static void fill(void) {
  if (start > 0) { /* keep the unread part at the front; it is short next to the buffer */
    memmove(buffer, buffer + start, length - start);
    length -= start;
    start = 0;
  }
  if (length == sizeof buffer) fail("reply too large");
  ssize_t got = recv(sock, buffer + length, sizeof buffer - length, 0);
  if (got <= 0) fail("connection closed");
  length += (size_t)got;
}

/* Waits for `terminator` after `start` and returns the length from `start` to its end. */
static size_t until(const char *terminator) {
  size_t size = strlen(terminator);
  for (size_t scanned = start;;) {
    char *found = memmem(buffer + scanned, length - scanned, terminator, size);
    if (found != NULL) return (size_t)(found - buffer) + size - start;
    scanned = length - start >= size ? length - size + 1 : start;
    size_t offset = scanned - start;
    fill();
    scanned = start + offset;
  }
}

static void consume(size_t size) {
  start += size;
}

static void reply(void) {
  size_t size = until("\r\n");
  if (strncmp(buffer + start, "+OK", 3) != 0) fail("the server said no");
  consume(size);
}

static void command(const char *text) {
  size_t size = strlen(text);
  if (send(sock, text, size, 0) != (ssize_t)size) fail("send");
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) fail("usage: pop3_retr_client PORT USER PASS N [WINDOW]");
  long window = argc == 6 ? atol(argv[5]) : 1;
  if (window < 1) window = 1;
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  sock = socket(AF_INET, SOCK_STREAM, 0);
  int on = 1;
  setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  if (connect(sock, (struct sockaddr *)&address, sizeof address) != 0) fail("connect");
  char line[512];
  long count = atol(argv[4]);
  reply();
  snprintf(line, sizeof line, "USER %s\r\n", argv[2]);
  command(line);
  reply();
  snprintf(line, sizeof line, "PASS %s\r\n", argv[3]);
  command(line);
  reply();
  printf("ready\n");
  fflush(stdout);
  char go[16];
  if (fgets(go, sizeof go, stdin) == NULL) fail("no go");
  unsigned long long octets = 0;
  long sent = 0;
  for (long number = 1; number <= count; ++number) {
    /* Keep up to `window` RETRs under way: send before reading the oldest reply. */
    for (; sent < count && sent < number - 1 + window; ++sent) {
      snprintf(line, sizeof line, "RETR %ld\r\n", sent + 1);
      command(line);
    }
    reply();
    /* The body up to CRLF "." CRLF, its last CRLF included; a line that starts with ".." was stuffed. */
    while (length - start < 3) fill();
    size_t size = memcmp(buffer + start, ".\r\n", 3) == 0 ? 3 : until("\r\n.\r\n");
    const char *body = buffer + start;
    size_t body_size = size - 3;
    octets += body_size;
    if (body_size >= 2 && body[0] == '.' && body[1] == '.') --octets;
    for (const char *at = body; (at = memmem(at, (size_t)(body + body_size - at), "\r\n..", 4)) != NULL; at += 4) {
      --octets;
    }
    consume(size);
  }
  command("QUIT\r\n");
  reply();
  printf("%ld %llu\n", count, octets);
  return 0;
}
