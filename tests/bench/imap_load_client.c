/* The IMAP concurrency bench's native load client: CLIENTS threads, each with one connection at a time to one
   INBOX, run the mix of tests/support/imap_stress.py (Client.step, IDLE left out) for SECONDS, then one JSON
   object of counts and latencies is printed. That Python client checks every response against a model and
   spends about 0.5 ms of CPU on a command, all threads sharing one interpreter lock, so it tops out near 1,700
   commands/s and its figures are partly its own. This one is in C and keeps only what it needs to send valid
   commands (the number of messages and the UID of each sequence number), so that commands/s and server CPU per
   command are the servers'. It checks the framing and the answers, not the data: tagged NO (by command: some
   are races, such as a UID EXPUNGE of a message gone) and BAD, untagged BAD, BYE not asked for, lost
   connections, replies later than 10 s (the connection is then dropped and made again), lines it cannot place.
   The commands are chosen in imap_load_mix.c; the bench builds both with `cc -O2 -pthread`.
   Usage: imap_load_client HOST PORT USER PASSWORD CLIENTS SECONDS LOGINS SEED (LOGINS 1: LOGOUT and a new
   connection and LOGIN now and then) */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "imap_load_client.h"

#define MAX_RESPONSE (64 << 20)

static const char *const COMMAND_NAMES[COMMANDS] = {"NOOP",   "FETCH",   "UID FETCH",   "STORE",  "UID STORE",
                                                    "APPEND", "EXPUNGE", "UID EXPUNGE", "SELECT", "EXAMINE",
                                                    "LOGIN",  "LOGOUT",  "CAPABILITY"};
static const char *const TROUBLE_NAMES[TROUBLES] = {"timeout",      "disconnect", "BYE not asked for",
                                                    "untagged BAD", "unparsable", "connect",
                                                    "greeting",     "model",      "VANISHED"};

struct run run = {.lock = PTHREAD_MUTEX_INITIALIZER};

double now(void) {
  struct timespec clock;
  clock_gettime(CLOCK_MONOTONIC, &clock);
  return (double)clock.tv_sec + (double)clock.tv_nsec / 1e9;
}

void *grow(void *array, size_t *capacity, size_t needed, size_t item) {
  if (needed <= *capacity) return array;
  size_t size = *capacity ? *capacity : 64;
  while (size < needed) size *= 2;
  array = realloc(array, size * item);
  if (array == NULL) {
    fprintf(stderr, "imap_load_client: out of memory\n");
    exit(1);
  }
  *capacity = size;
  return array;
}

/* --- randomness: splitmix64, one stream per client --- */

static uint64_t next_random(struct client *c) {
  uint64_t z = (c->rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

size_t below(struct client *c, size_t n) {
  return n ? (size_t)(next_random(c) % n) : 0;
}
double chance(struct client *c) {
  return (double)(next_random(c) >> 11) * 0x1.0p-53;
}

/* --- what is counted --- */

static int bucket(double seconds) {
  uint64_t micros = seconds > 0 ? (uint64_t)(seconds * 1e6) : 0;
  if (micros < 64) return (int)micros;
  int exponent = 63 - __builtin_clzll(micros);
  int index = 64 + (exponent - 6) * 32 + (int)((micros >> (exponent - 5)) & 31);
  return index < BUCKETS ? index : BUCKETS - 1;
}

static double bucket_ms(int index) {
  if (index < 64) return index / 1000.0;
  int exponent = 6 + (index - 64) / 32, step = (index - 64) % 32;
  double low = (double)((uint64_t)(32 + step) << (exponent - 5));
  return (low + (double)(1ull << (exponent - 5)) / 2) / 1000.0;
}

#define DIGIT(ch) ((ch) >= '0' && (ch) <= '9')

/* Whether two texts differ in their numbers alone (tags, UIDs, counts). */
static int alike(const char *a, const char *b) {
  while (*a && *b) {
    if (DIGIT(*a) && DIGIT(*b)) {
      while (DIGIT(*a)) ++a;
      while (DIGIT(*b)) ++b;
    } else if (*a++ != *b++) {
      return 0;
    }
  }
  return *a == *b;
}

/* Keeps "kind: text" as a sample unless one of the same kind and a `key` alike is kept already: a few kinds of
   trouble, not one kind often. */
static void sample(const char *kind, const char *key, const char *text) {
  static char keys[MAX_SAMPLES][200];
  char entry[sizeof run.samples[0]], full_key[sizeof keys[0]];
  snprintf(entry, sizeof entry, "%s: %s", kind, text);
  snprintf(full_key, sizeof full_key, "%s: %s", kind, key);
  pthread_mutex_lock(&run.lock);
  int seen = 0;
  for (int i = 0; i < run.sample_count && !seen; ++i) seen = alike(keys[i], full_key);
  if (!seen && run.sample_count < MAX_SAMPLES) {
    strcpy(keys[run.sample_count], full_key);
    strcpy(run.samples[run.sample_count++], entry);
  }
  pthread_mutex_unlock(&run.lock);
}

void trouble(struct client *c, enum trouble kind, const char *format, ...) {
  char text[256];
  va_list args;
  va_start(args, format);
  vsnprintf(text, sizeof text, format, args);
  va_end(args);
  c->stats.trouble[kind]++;
  sample(TROUBLE_NAMES[kind], text, text);
}

/* --- the connection --- */

void drop(struct client *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->selected = 0;
  c->start = c->length = 0;
}

static int fill(struct client *c, double deadline) {
  if (c->start > 0) { /* keep the unread part at the front: it is one response at most */
    memmove(c->buffer, c->buffer + c->start, c->length - c->start);
    c->length -= c->start;
    c->start = 0;
  }
  if (c->length == c->size) {
    if (c->size >= MAX_RESPONSE) return c->lost = UNPARSABLE, 0;
    c->buffer = grow(c->buffer, &c->size, c->size ? c->size * 2 : 1 << 18, 1);
  }
  if (now() > deadline) return c->lost = TIMED_OUT, 0;
  ssize_t got = recv(c->fd, c->buffer + c->length, c->size - c->length, 0); /* SO_RCVTIMEO bounds the wait */
  if (got > 0) return c->length += (size_t)got, 1;
  c->lost = got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? TIMED_OUT : DISCONNECT;
  return 0;
}

/* The size of the literal announced at the end of a line ({n}, {n+} or ~{n}), or -1. */
static long literal_at_end(const char *from, const char *end) {
  const char *p = end;
  if (p == from || p[-1] != '}') return -1;
  --p;
  if (p > from && p[-1] == '+') --p;
  const char *digits = p;
  while (p > from && p[-1] >= '0' && p[-1] <= '9' && digits - p < 10) --p;
  if (p == digits || p == from || p[-1] != '{') return -1;
  return strtol(p, NULL, 10);
}

/* Waits for a whole response (a line, the literals it announces, and the rest after each) and returns its size
   from c->start, or 0 when the connection was lost or the deadline passed (c->lost says which). Body octets are
   never taken for lines. */
static size_t response(struct client *c, double deadline) {
  size_t segment = 0, scan = 0;
  for (;;) {
    size_t have = c->length - c->start;
    const char *base = c->buffer + c->start;
    const char *end = scan < have ? memmem(base + scan, have - scan, "\r\n", 2) : NULL;
    if (end == NULL) {
      if (have > segment + 1) scan = have - 1;
      if (!fill(c, deadline)) return 0;
      continue;
    }
    long literal = literal_at_end(base + segment, end);
    size_t after = (size_t)(end - base) + 2;
    if (literal < 0) return after;
    segment = scan = after + (size_t)literal;
    while (c->length - c->start < segment) {
      if (!fill(c, deadline)) return 0;
    }
  }
}

int open_connection(struct client *c) {
  c->fd = socket(run.address.ss_family, SOCK_STREAM, 0);
  if (c->fd < 0) return trouble(c, CONNECT, "socket: %s", strerror(errno)), 0;
  int on = 1;
  struct timeval limit = {.tv_sec = TIMEOUT};
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  if (connect(c->fd, (struct sockaddr *)&run.address, run.address_size) != 0) {
    trouble(c, CONNECT, "connect: %s", strerror(errno));
    drop(c);
    return 0;
  }
  size_t size = response(c, now() + TIMEOUT);
  if (size == 0 || strncmp(c->buffer + c->start, "* OK", 4) != 0) {
    trouble(c, GREETING, "%s", size ? "not * OK" : TROUBLE_NAMES[c->lost]);
    drop(c);
    return 0;
  }
  c->start += size;
  return 1;
}

/* Skips an atom (a FETCH item's [section] and <partial> included), a quoted string, a literal or a list. */
static const char *skip_value(const char *p, const char *end, int depth) {
  if (p >= end || depth > 32) return NULL;
  if (*p == '(') {
    for (++p; p < end && *p != ')';) {
      p = *p == ' ' ? p + 1 : skip_value(p, end, depth + 1);
      if (p == NULL) return NULL;
    }
    return p < end ? p + 1 : NULL;
  }
  if (*p == '"') {
    for (++p; p < end && *p != '"'; ++p) {
      if (*p == '\\') ++p;
    }
    return p < end ? p + 1 : NULL;
  }
  if (*p == '{' || (*p == '~' && p + 1 < end && p[1] == '{')) {
    char *after;
    unsigned long size = strtoul(p + (*p == '~' ? 2 : 1), &after, 10);
    if (after + 3 > end || memcmp(after, "}\r\n", 3) != 0 || size > (unsigned long)(end - after - 3)) return NULL;
    return after + 3 + size;
  }
  const char *start = p;
  for (int brackets = 0; p < end && *p != '\r' && *p != '\n'; ++p) {
    if (*p == '[')
      brackets++;
    else if (*p == ']' && brackets)
      brackets--;
    else if (!brackets && strchr(" ()\"{", *p))
      break;
  }
  return p > start ? p : NULL;
}

/* * n FETCH (name value ...): learns the UID when it is there. */
static int on_fetch(struct client *c, unsigned long number, const char *p, const char *end) {
  unsigned long uid = 0;
  for (++p; p < end && *p != ')';) {
    if (*p == ' ') {
      ++p;
      continue;
    }
    const char *name = p;
    p = skip_value(p, end, 0);
    if (p == NULL || *p != ' ') return 0;
    const char *value = ++p;
    p = skip_value(p, end, 0);
    if (p == NULL) return 0;
    if (value - name == 4 && strncasecmp(name, "UID ", 4) == 0) uid = strtoul(value, NULL, 10);
  }
  if (p >= end) return 0;
  if (number < 1 || number > c->count) {
    trouble(c, MODEL, "* %lu FETCH, but the session holds %zu messages", number, c->count);
    c->resync = 1;
  } else if (uid && c->uids[number - 1] && c->uids[number - 1] != uid) {
    trouble(c, MODEL, "* %lu FETCH (UID %lu), but the session had UID %u there", number, uid, c->uids[number - 1]);
    c->resync = 1;
  } else if (uid) {
    c->uids[number - 1] = (uint32_t)uid;
  }
  return 1;
}

static void on_capability(struct client *c, const char *p, const char *end) {
  c->uidplus = c->literal_plus = 0;
  while (p < end && *p != ']' && *p != '\r') {
    const char *word = p;
    while (p < end && *p != ' ' && *p != ']' && *p != '\r') ++p;
    if (p - word == 7 && strncasecmp(word, "UIDPLUS", 7) == 0) c->uidplus = 1;
    if (p - word == 8 && strncasecmp(word, "LITERAL+", 8) == 0) c->literal_plus = 1;
    if (p < end && *p == ' ') ++p;
  }
}

/* The length of the first line from p, at most `most`. */
static int first_line(const char *p, const char *end, int most) {
  const char *cr = memchr(p, '\r', (size_t)(end - p));
  int size = (int)((cr ? cr : end) - p);
  return size < most ? size : most;
}

/* Returns 0 when the session cannot go on. */
static int untagged(struct client *c, enum command name, const char *p, const char *end) {
  int line = first_line(p, end, 160);
  if (*p >= '0' && *p <= '9') {
    char *after;
    unsigned long number = strtoul(p, &after, 10);
    if (strncasecmp(after, " EXISTS\r", 8) == 0)
      on_exists(c, number);
    else if (strncasecmp(after, " EXPUNGE\r", 9) == 0)
      on_expunge(c, number);
    else if (strncasecmp(after, " FETCH (", 8) == 0) {
      if (!on_fetch(c, number, after + 7, end)) return trouble(c, UNPARSABLE, "* %.*s", line, p), 0;
    } else if (strncasecmp(after, " RECENT\r", 8) != 0) {
      trouble(c, UNPARSABLE, "* %.*s", line, p);
    }
  } else if (strncasecmp(p, "BYE", 3) == 0) {
    if (name != LOGOUT) return trouble(c, BYE, "during %s: * %.*s", COMMAND_NAMES[name], line, p), 0;
  } else if (strncasecmp(p, "BAD", 3) == 0) {
    trouble(c, UNTAGGED_BAD, "during %s: * %.*s", COMMAND_NAMES[name], line, p);
  } else if (strncasecmp(p, "CAPABILITY ", 11) == 0) {
    on_capability(c, p + 11, end);
  } else if (strncasecmp(p, "VANISHED ", 9) == 0) {
    on_vanished(c, p + 9, p + first_line(p, end, (int)(end - p)));
  }
  return 1;
}

/* --- commands --- */

static enum status tagged(struct client *c, enum command name, const char *p, size_t size, double started) {
  size_t line = size - 2 < sizeof c->reply - 1 ? size - 2 : sizeof c->reply - 1;
  memcpy(c->reply, p, line);
  c->reply[line] = 0;
  const char *word = strchr(c->reply, ' ') + 1;
  enum status status = strncmp(word, "OK", 2) == 0    ? OK
                       : strncmp(word, "NO", 2) == 0  ? NO
                       : strncmp(word, "BAD", 3) == 0 ? BAD
                                                      : BROKEN;
  if (status == BROKEN) return trouble(c, UNPARSABLE, "%s answered %.120s", COMMAND_NAMES[name], c->reply), BROKEN;
  c->stats.done[name]++;
  c->stats.latency[name][bucket(now() - started)]++;
  if (status != OK) {
    (status == NO ? c->stats.no : c->stats.bad)[name]++;
    char text[256], key[200];
    snprintf(text, sizeof text, "%.100s -> %.140s", name == LOGIN ? "LOGIN" : strchr(c->line, ' ') + 1, word);
    snprintf(key, sizeof key, "%s -> %.140s", COMMAND_NAMES[name], word);
    sample(status == NO ? "NO" : "BAD", key, text);
  }
  const char *code = strstr(word, "[CAPABILITY ");
  if (code) on_capability(c, code + 12, c->reply + line);
  return status;
}

static char crlf[] = "\r\n";

/* A blocking socket sends it all unless the peer is gone or SO_SNDTIMEO passed: either ends the session. */
static int send_all(struct client *c, const struct iovec *parts, int count) {
  ssize_t total = 0, sent = writev(c->fd, parts, count);
  for (int i = 0; i < count; ++i) total += (ssize_t)parts[i].iov_len;
  if (sent == total) return 1;
  trouble(c, sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK ? DISCONNECT : TIMED_OUT, "sending: %s",
          sent < 0 ? strerror(errno) : "part of it");
  return 0;
}

/* Sends c->line (and `literal` after it, synchronizing or LITERAL+ at random) and reads up to its tagged reply,
   keeping the model up to date on the way. A session that cannot go on is dropped: BROKEN. */
static enum status exchange(struct client *c, enum command name, const char *literal, size_t literal_size) {
  char tag[24];
  size_t tag_size = (size_t)(strchr(c->line, ' ') - c->line);
  snprintf(tag, sizeof tag, "%.*s ", (int)tag_size, c->line);
  int waiting = literal && !(c->literal_plus && chance(c) < 0.5);
  size_t size = strlen(c->line);
  if (literal)
    size += (size_t)snprintf(c->line + size, sizeof c->line - size, " {%zu%s}", literal_size, waiting ? "" : "+");
  int plus = literal && !waiting;
  struct iovec parts[4] = {{c->line, size}, {crlf, 2}, {(void *)literal, literal_size}, {crlf, 2}};
  double started = now(), deadline = started + TIMEOUT;
  c->stats.sent[name]++;
  if (!send_all(c, parts, plus ? 4 : 2)) return drop(c), BROKEN;
  for (;;) {
    size_t got = response(c, deadline);
    if (got == 0) {
      trouble(c, c->lost, "during %s", COMMAND_NAMES[name]);
      return drop(c), BROKEN;
    }
    const char *p = c->buffer + c->start;
    if (strncmp(p, "* ", 2) == 0) {
      if (!untagged(c, name, p + 2, p + got)) return drop(c), BROKEN;
    } else if (p[0] == '+' && waiting) {
      waiting = 0;
      if (!send_all(c, parts + 2, 2)) return drop(c), BROKEN;
    } else if (strncmp(p, tag, tag_size + 1) == 0) {
      enum status status = tagged(c, name, p, got, started);
      c->start += got;
      if (status == BROKEN) drop(c);
      return status;
    } else {
      trouble(c, UNPARSABLE, "during %s: %.*s", COMMAND_NAMES[name], first_line(p, p + got, 120), p);
      return drop(c), BROKEN;
    }
    c->start += got;
  }
}

static enum status send_command(struct client *c, enum command name, const char *literal, size_t literal_size,
                                const char *format, va_list args) {
  if (c->fd < 0) return BROKEN;
  int size = snprintf(c->line, sizeof c->line, "c%dx%u ", c->index, ++c->serial);
  vsnprintf(c->line + size, sizeof c->line - (size_t)size, format, args);
  return exchange(c, name, literal, literal_size);
}

enum status command(struct client *c, enum command name, const char *format, ...) {
  va_list args;
  va_start(args, format);
  enum status status = send_command(c, name, NULL, 0, format, args);
  va_end(args);
  return status;
}

enum status command_literal(struct client *c, enum command name, const char *literal, size_t literal_size,
                            const char *format, ...) {
  va_list args;
  va_start(args, format);
  enum status status = send_command(c, name, literal, literal_size, format, args);
  va_end(args);
  return status;
}

/* --- the report --- */

static void json_string(const char *text) {
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)text; *p; ++p) {
    if (*p == '"' || *p == '\\')
      printf("\\%c", *p);
    else if (*p < 0x20 || *p >= 0x7f)
      printf("\\u%04x", *p);
    else
      putchar(*p);
  }
  putchar('"');
}

/* ", "key": {"NAME": n, ...}" of the counts that are not 0. */
static void json_counts(const char *key, const uint64_t *counts, const char *const *names, int total) {
  printf(", \"%s\": {", key);
  for (int i = 0, first = 1; i < total; ++i) {
    if (counts[i] == 0) continue;
    printf("%s\"%s\": %llu", first ? "" : ", ", names[i], (unsigned long long)counts[i]);
    first = 0;
  }
  putchar('}');
}

static double percentile_ms(const uint32_t *histogram, double share) {
  uint64_t total = 0, seen = 0;
  for (int i = 0; i < BUCKETS; ++i) total += histogram[i];
  if (total == 0) return 0;
  uint64_t rank = (uint64_t)(share * (double)(total - 1));
  for (int i = 0; i < BUCKETS; ++i) {
    seen += histogram[i];
    if (seen > rank) return bucket_ms(i);
  }
  return bucket_ms(BUCKETS - 1);
}

static uint64_t sum(const uint64_t *counts, int total) {
  uint64_t result = 0;
  for (int i = 0; i < total; ++i) result += counts[i];
  return result;
}

static void report(const struct stats *all, double elapsed) {
  static uint32_t every[BUCKETS];
  printf("{\"elapsed\": %.3f, \"commands\": %llu, \"sent\": %llu", elapsed,
         (unsigned long long)sum(all->done, COMMANDS), (unsigned long long)sum(all->sent, COMMANDS));
  json_counts("by_command", all->done, COMMAND_NAMES, COMMANDS);
  json_counts("sent_by_command", all->sent, COMMAND_NAMES, COMMANDS);
  json_counts("no", all->no, COMMAND_NAMES, COMMANDS);
  printf(", \"bad\": %llu", (unsigned long long)sum(all->bad, COMMANDS));
  json_counts("bad_by_command", all->bad, COMMAND_NAMES, COMMANDS);
  printf(", \"errors\": %llu", (unsigned long long)sum(all->trouble, TROUBLES));
  json_counts("error_kinds", all->trouble, TROUBLE_NAMES, TROUBLES);
  printf(", \"samples\": [");
  for (int i = 0; i < run.sample_count; ++i) {
    if (i) printf(", ");
    json_string(run.samples[i]);
  }
  printf("], \"latency_ms\": {");
  for (int name = 0, first = 1; name < COMMANDS; ++name) {
    for (int i = 0; i < BUCKETS; ++i) every[i] += all->latency[name][i];
    if (all->done[name] == 0) continue;
    printf("%s\"%s\": [%.3f, %.3f]", first ? "" : ", ", COMMAND_NAMES[name], percentile_ms(all->latency[name], 0.5),
           percentile_ms(all->latency[name], 0.99));
    first = 0;
  }
  printf("}, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"logins\": %llu}\n", percentile_ms(every, 0.5),
         percentile_ms(every, 0.99), (unsigned long long)all->logins);
}

static void merge(struct stats *all, const struct stats *one) {
  for (int name = 0; name < COMMANDS; ++name) {
    all->sent[name] += one->sent[name], all->done[name] += one->done[name];
    all->no[name] += one->no[name], all->bad[name] += one->bad[name];
    for (int i = 0; i < BUCKETS; ++i) all->latency[name][i] += one->latency[name][i];
  }
  for (int kind = 0; kind < TROUBLES; ++kind) all->trouble[kind] += one->trouble[kind];
  all->logins += one->logins;
}

int main(int argc, char **argv) {
  if (argc != 9) {
    fprintf(stderr, "usage: imap_load_client HOST PORT USER PASSWORD CLIENTS SECONDS LOGINS SEED\n");
    return 2;
  }
  run.user = argv[3], run.password = argv[4], run.clients = atoi(argv[5]), run.logins = atoi(argv[7]) != 0;
  run.seed = strtoull(argv[8], NULL, 10);
  double seconds = atof(argv[6]);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *found;
  if (run.clients < 1 || seconds <= 0 || getaddrinfo(argv[1], argv[2], &hints, &found) != 0) {
    fprintf(stderr, "imap_load_client: bad arguments, or %s:%s cannot be resolved\n", argv[1], argv[2]);
    return 2;
  }
  memcpy(&run.address, found->ai_addr, found->ai_addrlen);
  run.address_size = found->ai_addrlen;
  freeaddrinfo(found);
  signal(SIGPIPE, SIG_IGN); /* a server that closes is counted, not fatal */
  struct client *clients = calloc((size_t)run.clients, sizeof *clients);
  pthread_t *threads = calloc((size_t)run.clients, sizeof *threads);
  if (clients == NULL || threads == NULL) return 1;
  double start = now();
  run.deadline = start + seconds;
  for (int i = 0; i < run.clients; ++i) {
    clients[i].index = i, clients[i].fd = -1;
    clients[i].rng = run.seed * 0x100000001B3ull + (uint64_t)i;
    if (pthread_create(&threads[i], NULL, client_main, &clients[i]) != 0) return 1;
  }
  static struct stats all;
  for (int i = 0; i < run.clients; ++i) {
    pthread_join(threads[i], NULL);
    merge(&all, &clients[i].stats);
  }
  report(&all, now() - start);
  return 0;
}
