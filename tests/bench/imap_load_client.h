/* What the native IMAP load client's two halves share: imap_load_client.c keeps the sessions (connections,
   responses, the counts, main) and imap_load_mix.c the mailbox as a session sees it and the choice of commands. */
#ifndef IMAP_LOAD_CLIENT_H
#define IMAP_LOAD_CLIENT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TIMEOUT 10  /* seconds a command may take */
#define BUCKETS 640 /* latency histogram: 1 us steps below 64 us, then 32 steps per doubling (~3%) */
#define MAX_SAMPLES 16

enum command {
  NOOP,
  FETCH,
  UID_FETCH,
  STORE,
  UID_STORE,
  APPEND,
  EXPUNGE,
  UID_EXPUNGE,
  SELECT,
  EXAMINE,
  LOGIN,
  LOGOUT,
  CAPABILITY,
  COMMANDS
};
enum trouble { TIMED_OUT, DISCONNECT, BYE, UNTAGGED_BAD, UNPARSABLE, CONNECT, GREETING, MODEL, VANISHED, TROUBLES };
enum status { OK, NO, BAD, BROKEN };

struct stats {
  uint64_t sent[COMMANDS], done[COMMANDS], no[COMMANDS], bad[COMMANDS], trouble[TROUBLES], logins;
  uint32_t latency[COMMANDS][BUCKETS];
};

struct client {
  int index, fd, uidplus, literal_plus, selected, read_only, resync, viewed;
  size_t initial; /* messages at its first SELECT, 0 before */
  uint64_t rng;
  unsigned serial;
  enum trouble lost; /* why response() gave up */
  uint32_t *uids;    /* the UID of each sequence number, 0 while unknown */
  size_t count, capacity;
  uint32_t *owned; /* ascending UIDs of the messages it may set \Deleted on and expunge */
  size_t owned_count, owned_capacity;
  uint32_t *scratch; /* numbers a command is being built from */
  size_t scratch_capacity;
  char *buffer; /* what was received: unread from start to length */
  size_t start, length, size;
  unsigned appended;
  char line[16384], reply[512], message[16384];
  struct stats stats;
};

struct run {
  const char *user, *password;
  int clients, logins;
  uint64_t seed;
  double deadline;
  struct sockaddr_storage address;
  socklen_t address_size;
  pthread_mutex_t lock;
  char samples[MAX_SAMPLES][320];
  int sample_count;
};
extern struct run run;

double now(void);
void *grow(void *array, size_t *capacity, size_t needed, size_t item);
size_t below(struct client *c, size_t n);
double chance(struct client *c);
void trouble(struct client *c, enum trouble kind, const char *format, ...) __attribute__((format(printf, 3, 4)));
void drop(struct client *c);
int open_connection(struct client *c);
int owns(struct client *c, uint32_t uid);
void owned_add(struct client *c, uint32_t uid);
void owned_remove(struct client *c, uint32_t uid);
/* Sends a command whose text follows the tag, and reads up to its tagged reply (in c->reply). */
enum status command(struct client *c, enum command name, const char *format, ...) __attribute__((format(printf, 3, 4)));
/* The same with a literal after the text: synchronizing, or LITERAL+ half of the time when the server has it. */
enum status command_literal(struct client *c, enum command name, const char *literal, size_t literal_size,
                            const char *format, ...) __attribute__((format(printf, 5, 6)));
/* What untagged responses change. */
void on_exists(struct client *c, unsigned long number);
void on_expunge(struct client *c, unsigned long number);
void on_vanished(struct client *c, const char *p, const char *end);
void *client_main(void *argument);

#endif
