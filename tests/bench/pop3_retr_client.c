/* The POP3 bench's client: logs in, RETRs messages 1..N, QUITs, and prints "<messages> <octets after
   un-stuffing>". With WINDOW 1 each RETR waits for its whole reply, as fetchmail and getmail do; with a larger
   WINDOW up to that many RETRs are under way at once (PIPELINING, RFC 2449). Written in C so that the client's
   own cost is small next to the servers' it measures.
   Usage: pop3_retr_client PORT USER PASS N [WINDOW] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char buffer[1 << 22];
static size_t length;
static int sock;

static void fail(const char *what) {
  fprintf(stderr, "pop3_retr_client: %s\n", what);
  exit(1);
}

static void fill(void) {
  if (length == sizeof buffer) fail("reply too large");
  ssize_t got = recv(sock, buffer + length, sizeof buffer - length, 0);
  if (got <= 0) fail("connection closed");
  length += (size_t)got;
}

/* Waits for `terminator` and returns the length of what precedes it, terminator included. */
static size_t until(const char *terminator) {
  size_t size = strlen(terminator);
  for (size_t scanned = 0;;) {
    for (; scanned + size <= length; ++scanned) {
      if (memcmp(buffer + scanned, terminator, size) == 0) return scanned + size;
    }
    scanned = length >= size ? length - size + 1 : 0;
    fill();
  }
}

static void consume(size_t size) {
  memmove(buffer, buffer + size, length - size);
  length -= size;
}

static void reply(void) {
  size_t size = until("\r\n");
  if (strncmp(buffer, "+OK", 3) != 0) fail("the server said no");
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
    size_t size = length >= 3 && memcmp(buffer, ".\r\n", 3) == 0 ? 3 : until("\r\n.\r\n");
    size_t body = size - 3;
    octets += body;
    if (body >= 2 && buffer[0] == '.' && buffer[1] == '.') --octets;
    for (size_t i = 0; i + 4 <= body; ++i) {
      if (buffer[i] == '\r' && buffer[i + 1] == '\n' && buffer[i + 2] == '.' && buffer[i + 3] == '.') --octets;
    }
    consume(size);
  }
  command("QUIT\r\n");
  reply();
  printf("%ld %llu\n", count, octets);
  return 0;
}
