/* The native IMAP load client's mix: what Client.step of tests/support/imap_stress.py chooses, with its weights
   and variants, IDLE left out and nothing checked; and the mailbox as a session sees it (how many messages, and
   the UID of each when known). Messages "owned" by a client are those it APPENDed and those of its first view
   whose position is its index modulo the number of clients, as prepare_mailbox()'s messages are shared out
   there: only the owner sets \Deleted on a message and expunges it. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>

#include "imap_load_client.h"

static const char *const OWNER_FLAGS[] = {"\\Flagged", "\\Answered", "\\Draft", "$Label1", "$Label2",
                                          "$Label3",   "$Label4",    "Work",    "Personal"};
static const char *const NOISE_FLAGS[] = {"\\Seen", "$Label5", "Junk", "NonJunk", "$Junk", "$NotJunk"};
static const char *const WORDS[] = {
    "meeting", "report",   "update",   "project",  "review",  "team",    "please",   "thanks",   "attached", "schedule",
    "budget",  "server",   "release",  "build",    "change",  "design",  "plan",     "notes",    "customer", "order",
    "invoice", "delivery", "question", "answer",   "support", "ticket",  "draft",    "final",    "office",   "lunch",
    "agenda",  "minutes",  "travel",   "contract", "account", "payment", "reminder", "deadline", "coffee",   "summary"};
#define COUNT(array) (sizeof(array) / sizeof(array[0]))
#define HEADER_FIELDS "BODY.PEEK[HEADER.FIELDS (From Subject Date)]"

static void pause_ms(long milliseconds) {
  struct timespec wait = {.tv_sec = milliseconds / 1000, .tv_nsec = (milliseconds % 1000) * 1000000};
  nanosleep(&wait, NULL);
}

/* --- the messages it owns: a sorted set of UIDs --- */

static ssize_t owned_find(struct client *c, uint32_t uid) {
  size_t low = 0, high = c->owned_count;
  while (low < high) {
    size_t middle = (low + high) / 2;
    if (c->owned[middle] < uid)
      low = middle + 1;
    else
      high = middle;
  }
  return low < c->owned_count && c->owned[low] == uid ? (ssize_t)low : -(ssize_t)low - 1;
}

int owns(struct client *c, uint32_t uid) {
  return owned_find(c, uid) >= 0;
}

void owned_add(struct client *c, uint32_t uid) {
  ssize_t at = owned_find(c, uid);
  if (at >= 0) return;
  size_t position = (size_t)(-at - 1);
  c->owned = grow(c->owned, &c->owned_capacity, c->owned_count + 1, sizeof *c->owned);
  memmove(c->owned + position + 1, c->owned + position, (c->owned_count - position) * sizeof *c->owned);
  c->owned[position] = uid;
  c->owned_count++;
}

void owned_remove(struct client *c, uint32_t uid) {
  ssize_t at = owned_find(c, uid);
  if (at < 0) return;
  memmove(c->owned + at, c->owned + at + 1, (c->owned_count - (size_t)at - 1) * sizeof *c->owned);
  c->owned_count--;
}

/* --- the mailbox as this session sees it --- */

void on_exists(struct client *c, unsigned long number) {
  if (number < c->count) {
    trouble(c, MODEL, "* %lu EXISTS, but the session holds %zu messages", number, c->count);
    c->resync = 1;
    return;
  }
  c->uids = grow(c->uids, &c->capacity, number, sizeof *c->uids);
  memset(c->uids + c->count, 0, (number - c->count) * sizeof *c->uids);
  c->count = number;
}

static void remove_message(struct client *c, size_t index) {
  if (c->uids[index]) owned_remove(c, c->uids[index]);
  memmove(c->uids + index, c->uids + index + 1, (c->count - index - 1) * sizeof *c->uids);
  c->count--;
}

void on_expunge(struct client *c, unsigned long number) {
  if (number < 1 || number > c->count) {
    trouble(c, MODEL, "* %lu EXPUNGE, but the session holds %zu messages", number, c->count);
    c->resync = 1;
    return;
  }
  remove_message(c, number - 1);
}

/* VANISHED comes only after ENABLE QRESYNC, which this client never sends: counted, applied, then SELECT again
   (messages whose UID it did not know may be among those gone). */
void on_vanished(struct client *c, const char *p, const char *end) {
  trouble(c, VANISHED, "%.*s", (int)(end - p), p);
  if (strncasecmp(p, "(EARLIER) ", 10) == 0) p += 10;
  while (p < end && *p >= '0' && *p <= '9') {
    char *after;
    unsigned long low = strtoul(p, &after, 10), high = low;
    if (*after == ':') high = strtoul(after + 1, &after, 10);
    if (high < low) low ^= high, high ^= low, low ^= high;
    for (size_t i = c->count; i-- > 0;) {
      if (c->uids[i] >= low && c->uids[i] <= high) remove_message(c, i);
    }
    p = *after == ',' ? after + 1 : end;
  }
  c->resync = 1;
}

/* --- building commands --- */

/* 1,2,3,7 -> "1:3,7", of ascending numbers; stops short rather than overflow `out`. */
static void compact(const uint32_t *numbers, size_t count, char *out, size_t size) {
  size_t used = 0;
  out[0] = 0;
  for (size_t i = 0; i < count && used + 24 < size;) {
    size_t j = i;
    while (j + 1 < count && numbers[j + 1] == numbers[j] + 1) ++j;
    used += (size_t)(j > i ? snprintf(out + used, size - used, "%s%u:%u", used ? "," : "", numbers[i], numbers[j])
                           : snprintf(out + used, size - used, "%s%u", used ? "," : "", numbers[i]));
    i = j + 1;
  }
}

/* Appends `count` of `flags`, without repeats, space-separated, to the text in `out`. */
static void add_flags(struct client *c, char *out, size_t size, const char *const *flags, size_t total, size_t count) {
  size_t order[16];
  for (size_t i = 0; i < total; ++i) order[i] = i;
  for (size_t i = 0; i < count && i < total; ++i) {
    size_t j = i + below(c, total - i), swap = order[i];
    order[i] = order[j], order[j] = swap;
    size_t used = strlen(out);
    snprintf(out + used, size - used, "%s%s", used ? " " : "", flags[order[i]]);
  }
}

/* Up to `want` (at most 3) different numbers of `from`, ascending, into `out`; returns how many. */
static size_t pick(struct client *c, const uint32_t *from, size_t available, size_t want, uint32_t *out) {
  size_t picked = 0;
  for (int tries = 0; picked < want && picked < available && tries < 20; ++tries) {
    uint32_t number = from[below(c, available)];
    size_t at = 0;
    while (at < picked && out[at] < number) ++at;
    if (at < picked && out[at] == number) continue;
    memmove(out + at + 1, out + at, (picked - at) * sizeof *out);
    out[at] = number;
    picked++;
  }
  return picked;
}

static uint32_t *scratch(struct client *c) {
  c->scratch = grow(c->scratch, &c->scratch_capacity, c->count + 1, sizeof *c->scratch);
  return c->scratch;
}

/* The UIDs it knows, in sequence order, into c->scratch; returns how many. */
static size_t known_uids(struct client *c) {
  uint32_t *out = scratch(c);
  size_t known = 0;
  for (size_t i = 0; i < c->count; ++i) {
    if (c->uids[i]) out[known++] = c->uids[i];
  }
  return known;
}

/* The sequence numbers of the messages it owns, into c->scratch; returns how many. */
static size_t owned_numbers(struct client *c) {
  uint32_t *out = scratch(c);
  size_t owned = 0;
  for (size_t i = 0; i < c->count; ++i) {
    if (c->uids[i] && owns(c, c->uids[i])) out[owned++] = (uint32_t)i + 1;
  }
  return owned;
}

static void numbers(char *out, size_t size, size_t start, size_t end) {
  if (start == end)
    snprintf(out, size, "%zu", start);
  else
    snprintf(out, size, "%zu:%zu", start, end);
}

/* 1 to 6 messages from a random one: one alone 70% of the time. */
static void random_range(struct client *c, char *out, size_t size) {
  size_t start = 1 + below(c, c->count), end = start;
  if (chance(c) >= 0.7) end = start + 1 + below(c, 5);
  if (end > c->count) end = c->count;
  numbers(out, size, start, end);
}

/* --- the commands --- */

static void select_mailbox(struct client *c, int examine) {
  c->count = 0;
  c->selected = c->resync = 0;
  enum status status = command(c, examine ? EXAMINE : SELECT, "%s INBOX", examine ? "EXAMINE" : "SELECT");
  if (status != OK) {
    if (status != BROKEN) drop(c), pause_ms(50);
    return;
  }
  c->selected = 1, c->read_only = examine;
  if (c->count > 0) { /* what a client does after SELECT: learns the UIDs and flags */
    if (chance(c) < 0.5)
      command(c, FETCH, "FETCH 1:* (UID FLAGS)");
    else
      command(c, UID_FETCH, "UID FETCH 1:* (FLAGS)");
  }
  if (!c->viewed && c->fd >= 0) {
    c->viewed = 1, c->initial = c->count;
    for (size_t i = (size_t)c->index; i < c->count; i += (size_t)run.clients) {
      if (c->uids[i]) owned_add(c, c->uids[i]);
    }
  }
}

static void noop(struct client *c) {
  command(c, NOOP, "NOOP");
  uint32_t *unknown = scratch(c);
  size_t count = 0;
  for (size_t i = 0; i < c->count; ++i) {
    if (c->uids[i] == 0) unknown[count++] = (uint32_t)i + 1;
  }
  if (count && chance(c) < 0.7) { /* messages that arrived: their UIDs */
    char set[4096];
    compact(unknown, count, set, sizeof set);
    command(c, FETCH, "FETCH %s (UID FLAGS)", set);
  }
}

static void fetch(struct client *c) {
  static const char *const variants[] = {"FLAGS",
                                         "UID FLAGS",
                                         "UID BODY.PEEK[]",
                                         "UID BODYSTRUCTURE",
                                         "UID ENVELOPE RFC822.SIZE",
                                         "UID " HEADER_FIELDS,
                                         "UID FLAGS INTERNALDATE"};
  if (c->count == 0) {
    noop(c);
    return;
  }
  char set[48];
  random_range(c, set, sizeof set);
  /* BODY[] sets \Seen, a flag anyone may change */
  const char *items = !c->read_only && chance(c) < 0.1 ? "UID BODY[]" : variants[below(c, COUNT(variants))];
  command(c, FETCH, "FETCH %s (%s)", set, items);
}

static void uid_fetch(struct client *c) {
  static const char *const variants[] = {"FLAGS",       "FLAGS INTERNALDATE", "BODY.PEEK[]",
                                         HEADER_FIELDS, "ENVELOPE",           "RFC822.SIZE FLAGS"};
  size_t known = known_uids(c);
  if (known == 0) {
    noop(c);
    return;
  }
  size_t first = below(c, known), last = first + below(c, 8);
  if (last >= known) last = known - 1;
  const char *items = variants[below(c, COUNT(variants))];
  if (chance(c) < 0.2)
    command(c, UID_FETCH, "UID FETCH %u:* (%s)", c->scratch[first], items);
  else
    command(c, UID_FETCH, "UID FETCH %u:%u (%s)", c->scratch[first], c->scratch[last], items);
}

/* STORE on 1 to 3 of its messages (c->scratch holds their numbers), by UID or number: +FLAGS, -FLAGS or FLAGS. */
static void store_own(struct client *c, size_t owned) {
  uint32_t picks[3];
  size_t count = pick(c, c->scratch, owned, chance(c) < 0.8 ? 1 : 2 + below(c, 2), picks);
  double mode = chance(c) * 9;
  char flags[256] = "";
  if (mode < 4) {
    add_flags(c, flags, sizeof flags, OWNER_FLAGS, COUNT(OWNER_FLAGS), 1 + below(c, 2));
    add_flags(c, flags, sizeof flags, NOISE_FLAGS, COUNT(NOISE_FLAGS), chance(c) < 0.3);
  } else if (mode < 7) {
    add_flags(c, flags, sizeof flags, OWNER_FLAGS, COUNT(OWNER_FLAGS), 1 + below(c, 2));
  } else {
    add_flags(c, flags, sizeof flags, OWNER_FLAGS, COUNT(OWNER_FLAGS), below(c, 4));
    add_flags(c, flags, sizeof flags, NOISE_FLAGS, COUNT(NOISE_FLAGS), chance(c) < 0.5);
  }
  const char *silent = chance(c) < 0.3 ? ".SILENT" : "";
  int by_uid = chance(c) < 0.5;
  if (by_uid) {
    for (size_t i = 0; i < count; ++i) picks[i] = c->uids[picks[i] - 1];
  }
  char set[128];
  compact(picks, count, set, sizeof set);
  const char *sign = mode < 4 ? "+" : mode < 7 ? "-" : "";
  command(c, by_uid ? UID_STORE : STORE, "%sSTORE %s %sFLAGS%s (%s)", by_uid ? "UID " : "", set, sign, silent, flags);
}

/* +FLAGS or -FLAGS of flags that any client may change, on any messages. */
static void store_noise(struct client *c) {
  char flags[128] = "", set[128];
  add_flags(c, flags, sizeof flags, NOISE_FLAGS, COUNT(NOISE_FLAGS), 1 + below(c, 2));
  const char *sign = chance(c) < 0.5 ? "+" : "-", *silent = chance(c) < 0.4 ? ".SILENT" : "";
  size_t known = known_uids(c);
  if (known && chance(c) < 0.5) {
    uint32_t picks[3];
    compact(picks, pick(c, c->scratch, known, 1 + below(c, 3), picks), set, sizeof set);
    command(c, UID_STORE, "UID STORE %s %sFLAGS%s (%s)", set, sign, silent, flags);
  } else {
    random_range(c, set, sizeof set);
    command(c, STORE, "STORE %s %sFLAGS%s (%s)", set, sign, silent, flags);
  }
}

/* \Deleted on one of its messages (c->scratch holds their numbers), then UID EXPUNGE of it or EXPUNGE. */
static void delete_own(struct client *c, size_t owned) {
  uint32_t number = c->scratch[below(c, owned)], uid = c->uids[number - 1];
  owned_remove(c, uid);
  enum status status =
      chance(c) < 0.5 ? command(c, UID_STORE, "UID STORE %u +FLAGS.SILENT (\\Deleted)", uid)
                      : command(c, STORE, "STORE %u +FLAGS%s (\\Deleted)", number, chance(c) < 0.5 ? ".SILENT" : "");
  if (status != OK) return;
  if (c->uidplus && chance(c) < 0.6)
    command(c, UID_EXPUNGE, "UID EXPUNGE %u", uid);
  else
    command(c, EXPUNGE, "EXPUNGE");
}

struct text {
  char *data;
  size_t size, used;
};

static void put(struct text *t, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *format, ...) {
  va_list args;
  va_start(args, format);
  int added = vsnprintf(t->data + t->used, t->size - t->used, format, args);
  va_end(args);
  t->used = added < 0 ? t->used : t->used + (size_t)added < t->size ? t->used + (size_t)added : t->size - 1;
}

/* 2 to 29 lines of 6 to 11 words. */
static void paragraph(struct client *c, struct text *t) {
  for (size_t line = 0, lines = 2 + below(c, 28); line < lines; ++line) {
    for (size_t word = 0, words = 6 + below(c, 6); word < words; ++word) {
      put(t, "%s%s", word ? " " : line ? "\r\n" : "", WORDS[below(c, COUNT(WORDS))]);
    }
  }
}

/* A message of a few hundred octets to a few KB into c->message, plain text, multipart/alternative or
   multipart/mixed with a base64 attachment, as the checking client's are; returns its size. */
static size_t make_message(struct client *c) {
  char body[8192];
  struct text t = {c->message, sizeof c->message, 0}, text = {body, sizeof body, 0};
  paragraph(c, &text);
  put(&t, "From: Load Sender <sender%zu@remote.test>\r\nTo: <bench@example.test>\r\nSubject: Load c%d-%u",
      below(c, 100), c->index, ++c->appended);
  for (size_t word = 0, words = 2 + below(c, 4); word < words; ++word) put(&t, " %s", WORDS[below(c, COUNT(WORDS))]);
  put(&t,
      "\r\nDate: Mon, 2 Mar 2026 10:%02zu:00 +0000\r\nMessage-ID: <c%d-%u.%llx@remote.test>\r\n"
      "MIME-Version: 1.0\r\n",
      below(c, 60), c->index, c->appended, (unsigned long long)below(c, 1ull << 48));
  double kind = chance(c);
  unsigned boundary = (unsigned)below(c, 1ull << 32);
  if (kind < 0.15) {
    put(&t,
        "Content-Type: multipart/alternative; boundary=\"=_alt_%x\"\r\n\r\n--=_alt_%x\r\nContent-Type: "
        "text/plain; charset=utf-8\r\n\r\n%s\r\n--=_alt_%x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<p>%s</p>\r\n--=_alt_%x--\r\n",
        boundary, boundary, body, boundary, body, boundary);
  } else if (kind < 0.30) {
    put(&t,
        "Content-Type: multipart/mixed; boundary=\"=_mixed_%x\"\r\n\r\n--=_mixed_%x\r\nContent-Type: "
        "text/plain; charset=utf-8\r\n\r\n%s\r\n--=_mixed_%x\r\nContent-Type: application/octet-stream; "
        "name=\"a.bin\"\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\nContent-Transfer-Encoding: "
        "base64\r\n\r\n",
        boundary, boundary, body, boundary);
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t line = 0, lines = 2 + below(c, 18); line < lines; ++line) {
      for (int i = 0; i < 76; ++i) put(&t, "%c", alphabet[below(c, 64)]);
      put(&t, "\r\n");
    }
    put(&t, "--=_mixed_%x--\r\n", boundary);
  } else {
    put(&t, "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", body);
  }
  return t.used;
}

static void append(struct client *c) {
  size_t size = make_message(c);
  char flags[256] = "";
  add_flags(c, flags, sizeof flags, OWNER_FLAGS, COUNT(OWNER_FLAGS), below(c, 4));
  add_flags(c, flags, sizeof flags, NOISE_FLAGS, COUNT(NOISE_FLAGS), chance(c) < 0.3);
  const char *date = chance(c) < 0.3 ? " \"02-Mar-2026 10:11:12 +0000\"" : "";
  if (command_literal(c, APPEND, c->message, size, "APPEND INBOX (%s)%s", flags, date) != OK) return;
  const char *code = strstr(c->reply, "[APPENDUID ");
  unsigned long validity, uid;
  if (code && sscanf(code + 11, "%lu %lu", &validity, &uid) == 2) owned_add(c, (uint32_t)uid);
}

/* --- the session --- */

static void quote(char *out, size_t size, const char *text) {
  size_t used = 0;
  out[used++] = '"';
  for (; *text && used + 3 < size; ++text) {
    if (*text == '"' || *text == '\\') out[used++] = '\\';
    out[used++] = *text;
  }
  out[used++] = '"';
  out[used] = 0;
}

static int open_session(struct client *c) {
  if (!open_connection(c)) return 0;
  char user[256], password[256];
  quote(user, sizeof user, run.user);
  quote(password, sizeof password, run.password);
  c->uidplus = c->literal_plus = 0;
  enum status status = command(c, LOGIN, "LOGIN %s %s", user, password);
  if (status != OK) return drop(c), 0;
  c->stats.logins++;
  /* what a server offers may change at login: the capabilities are those after it */
  if (strstr(c->reply, "[CAPABILITY ") == NULL) command(c, CAPABILITY, "CAPABILITY");
  return c->fd >= 0;
}

static void step(struct client *c) {
  size_t owned = owned_numbers(c);
  double crowded = (double)c->count / (double)(c->initial > 20 ? c->initial : 20);
  double weights[] = {8, 30, 10, 0, 0, 7, 0, 3, run.logins ? 2 : 0};
  if (!c->read_only && owned) weights[3] = 14, weights[6] = 5 * crowded;
  if (!c->read_only && c->count) weights[4] = 10;
  double total = 0;
  for (size_t i = 0; i < COUNT(weights); ++i) total += weights[i];
  double at = chance(c) * total;
  size_t choice = 0;
  while (choice + 1 < COUNT(weights) && (at >= weights[choice] || weights[choice] == 0)) at -= weights[choice++];
  switch (choice) {
    case 0: noop(c); break;
    case 1: fetch(c); break;
    case 2: uid_fetch(c); break;
    case 3: store_own(c, owned); break;
    case 4: store_noise(c); break;
    case 5: append(c); break;
    case 6: delete_own(c, owned); break;
    case 7: select_mailbox(c, chance(c) < 0.15); break;
    default: /* LOGOUT; a new connection and LOGIN come next */
      if (!run.logins) break;
      command(c, LOGOUT, "LOGOUT");
      drop(c);
  }
}

void *client_main(void *argument) {
  struct client *c = argument;
  while (now() < run.deadline) {
    if (c->fd < 0) {
      if (!open_session(c)) pause_ms(50);
    } else if (!c->selected || c->resync) {
      select_mailbox(c, chance(c) < 0.15);
    } else {
      step(c);
    }
  }
  if (c->fd >= 0) {
    command(c, LOGOUT, "LOGOUT");
    drop(c);
  }
  return NULL;
}
