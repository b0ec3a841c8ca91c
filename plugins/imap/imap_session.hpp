// One IMAP4rev1 session (RFC 3501), from greeting to LOGOUT. imap_session.cpp holds the session, its command
// table and the commands of the not-authenticated and authenticated states; imap_mailbox.cpp the selected
// state (STORE, EXPUNGE and the mailbox snapshot), imap_list.cpp LIST and STATUS, imap_select.cpp SELECT,
// imap_fetch.cpp FETCH, imap_search.cpp SEARCH and imap_sort.cpp SORT and THREAD.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "imap_syntax.hpp"
#include "message_list.hpp"
#include "mime_message.hpp"
#include "recent.hpp"
#include "structure_cache.hpp"
#include "tern/sdk/protocol.hpp"
#include "threading.hpp"

namespace tern::imap {

class ImapSession {
 public:
  ImapSession(sdk::Connection& connection, sdk::ServerContext& server, const sdk::ListenerInfo& listener,
              sdk::ClientInfo client, StructureCache& structures, MailboxLists& lists, RecentClaims& recent);

  sdk::Task<void> run();

 private:
  enum class State { not_authenticated, authenticated, selected };
  using Handler = sdk::Task<void> (ImapSession::*)(const Command& command);
  // The states a command is valid in, as bits.
  static constexpr unsigned kBefore = 1;    // not authenticated
  static constexpr unsigned kAfter = 2;     // authenticated, no mailbox selected
  static constexpr unsigned kSelected = 4;  // a mailbox selected
  struct Entry {
    const char* name;
    unsigned states;
    Handler handler;
  };
  static const Entry kCommands[];

  // imap_session.cpp
  sdk::Task<void> on_capability(const Command& command);
  sdk::Task<void> on_noop(const Command& command);
  sdk::Task<void> on_logout(const Command& command);
  sdk::Task<void> on_id(const Command& command);
  sdk::Task<void> on_starttls(const Command& command);
  sdk::Task<void> on_login(const Command& command);
  sdk::Task<void> on_authenticate(const Command& command);
  sdk::Task<void> on_idle(const Command& command);
  sdk::Task<void> log_in(const Command& command, std::string_view user, std::string_view password);
  // Reads one whole command, literals included; false when the session must end.
  sdk::Task<bool> read_command(std::string& text, std::string& tag_hint);
  std::string capabilities() const;
  // A mailbox name as the client sent it, as the store keeps it: UTF-8 (from modified UTF-7 unless IMAP4rev2
  // is on), INBOX in any case as INBOX, a trailing '/' dropped. nullopt when it is not valid modified UTF-7.
  std::optional<std::string> mailbox_argument(const Value& value) const;
  // A stored mailbox name as the client expects it, quoted or as a literal.
  std::string mailbox_text(std::string_view name) const { return imap_string(rev2_ ? name : utf8_to_utf7(name)); }
  bool login_allowed() const { return connection_.tls_active() || listener_.allow_plaintext_auth; }

  // imap_list.cpp
  sdk::Task<void> on_list(const Command& command);
  // What a LIST or LSUB asks for: its patterns (reference joined), selection and return options.
  struct ListRequest {
    bool lsub = false;
    std::vector<std::string> patterns;
    bool special_only = false;     // (SPECIAL-USE)
    bool subscribed_only = false;  // (SUBSCRIBED)
    bool recursive = false;        // (SUBSCRIBED RECURSIVEMATCH)
    bool return_subscribed = false;
    std::optional<Value> status_items;  // RETURN (STATUS (...))
  };
  // One name a LIST answers with.
  struct ListedName {
    std::string name;
    const sdk::MailboxInfo* mailbox;  // null for a subscribed name without a mailbox
    std::string attributes;
    bool child_subscribed;  // RECURSIVEMATCH's CHILDINFO ("SUBSCRIBED")
  };
  // LIST's selection and return options; false once the command has been answered BAD.
  bool list_selection(const Command& command, const Value& options, ListRequest& request);
  bool list_return(const Command& command, const Value& options, ListRequest& request);
  // The names a LIST or LSUB answers with, in order. `subscribed`: sorted.
  static std::vector<ListedName> list_names(const ListRequest& request, const std::vector<sdk::MailboxInfo>& mailboxes,
                                            const std::vector<std::string>& subscribed);
  sdk::Task<void> on_namespace(const Command& command);
  sdk::Task<void> on_status(const Command& command);
  // LIST-STATUS: the STATUS response of one listed mailbox; false once the command has been answered.
  sdk::Task<bool> list_status(const Command& command, const sdk::MailboxInfo& mailbox, const Value& items);
  // The STATUS response for a mailbox and the items asked for; nullopt for an unknown item.
  // `recent_from`: the mailbox's \\Recent watermark, read when status_needs_store(items); `listed`: its
  // messages, read (and only then used) when status_needs_list().
  std::optional<std::string> status_response(const sdk::MailboxInfo& mailbox, const Value& items,
                                             const Messages* listed, std::uint32_t recent_from) const;
  static bool status_needs_store(const Value& items);
  // SIZE and DELETED count the messages; RECENT does only when some have not been handed out.
  static bool status_needs_list(const Value& items, const sdk::MailboxInfo& mailbox, std::uint32_t recent_from);
  // imap_select.cpp
  sdk::Task<void> on_select(const Command& command);
  // SELECT's QRESYNC parameter: the client's last UIDVALIDITY and change number, and the UIDs it knows.
  struct Resync {
    std::uint32_t uidvalidity = 0;
    std::uint64_t modseq = 0;
    std::optional<std::vector<std::pair<std::uint32_t, std::uint32_t>>> known;
  };
  static std::optional<Resync> parse_resync(const Value& list);
  // SELECT's parameters (CONDSTORE, QRESYNC); false once the command has been answered BAD.
  bool select_parameters(const Command& command, std::optional<Resync>& resync);
  // QRESYNC's report for a client that knew the mailbox: VANISHED (EARLIER), then each message changed since.
  void report_resync(const Resync& resync, std::vector<std::uint32_t> vanished);

  // imap_folders.cpp
  sdk::Task<void> on_create(const Command& command);
  sdk::Task<void> on_delete(const Command& command);
  sdk::Task<void> on_rename(const Command& command);
  sdk::Task<void> on_subscribe(const Command& command);
  sdk::Task<void> on_enable(const Command& command);
  // imap_transfer.cpp
  sdk::Task<void> on_append(const Command& command);
  sdk::Task<void> on_copy(const Command& command);
  sdk::Task<void> on_uid_expunge(const Command& command);

  // imap_quota.cpp
  sdk::Task<void> on_getquotaroot(const Command& command);
  sdk::Task<void> on_getquota(const Command& command);
  sdk::Task<void> on_setquota(const Command& command);
  static std::string quota_response(const sdk::QuotaInfo& quota);

  // imap_fetch.cpp
  sdk::Task<void> on_fetch(const Command& command);
  struct FetchPlan;
  struct FetchTrouble;
  // One message as a FETCH response is written from it.
  struct Fetched {
    const sdk::MessageEntry& message;
    std::string_view content;         // the message, when a section or an unknown structure asked for it
    const mime::MimeMessage* parsed;  // its MIME structure, when a part or a structure asked for it
    const Structure* structure;       // ENVELOPE, BODY and BODYSTRUCTURE, when asked for
    bool seen_now;                    // this FETCH set \\Seen
  };
  // Reads a FETCH command into its plan; false once the command has been answered BAD.
  bool plan_fetch(const Command& command, FetchPlan& plan);
  bool plan_items(const Command& command, const std::vector<std::string>& items, FetchPlan& plan);
  // VANISHED (EARLIER) for the UIDs of the set that went since CHANGEDSINCE; false once answered NO.
  sdk::Task<bool> report_vanished(const Command& command, const FetchPlan& plan);
  // Reads the messages plan.indexes[start, end) in one trip to the store, setting \\Seen as the plan says, and
  // writes their responses; false once the command has been answered NO.
  sdk::Task<bool> fetch_batch(const Command& command, const FetchPlan& plan, std::size_t start, std::size_t end,
                              FetchTrouble& trouble);
  void render_fetch(const FetchPlan& plan, std::size_t index, const Fetched& fetched, FetchTrouble& trouble);
  // imap_mailbox.cpp
  sdk::Task<void> on_store(const Command& command);
  // Takes a STORE's result into the snapshot, tells the client the new flags unless `silent`, and answers it.
  void report_stored(const Command& command, const std::vector<std::size_t>& indexes, const sdk::FlagResult& result,
                     bool silent);
  sdk::Task<void> on_expunge(const Command& command);
  sdk::Task<void> on_close(const Command& command);
  // imap_search.cpp
  sdk::Task<void> on_search(const Command& command);
  // The snapshot indexes of the messages that match search keys, in mailbox order; nullopt once the command
  // has been answered (BAD for a key this server does not know, NO when the messages cannot be read). When a
  // key needs the messages' text, `contents` holds every message's (by snapshot index), else nothing.
  sdk::Task<std::optional<std::vector<std::size_t>>> search_messages(const Command& command,
                                                                     const std::vector<Value>& keys,
                                                                     std::vector<std::string>& contents);
  // Whether a SEARCH, SORT or THREAD charset is one the keys can be in; answers NO [BADCHARSET] when not.
  bool charset_supported(const Command& command, const Value& charset);
  // imap_sort.cpp
  sdk::Task<void> on_sort(const Command& command);
  sdk::Task<void> on_thread(const Command& command);
  // The messages that match search keys as SORT and THREAD see them, numbered by UID for a UID command; the
  // header fields are read only when `headers`. nullopt once the command has been answered.
  sdk::Task<std::optional<std::vector<MessageSummary>>> summarize_matches(const Command& command,
                                                                          const std::vector<Value>& keys, bool headers);
  // Brings the snapshot up to date with the store, telling the client what changed (EXPUNGE or VANISHED,
  // FETCH FLAGS, EXISTS).
  sdk::Task<bool> refresh();
  // What refresh() learns from the store about the selected mailbox; taken on a worker thread.
  struct Probe {
    std::shared_ptr<const Messages> now;  // null: nothing changed
    std::uint64_t modseq = 0;
    bool replaced = false;  // deleted and made again: another UIDVALIDITY
    std::uint32_t first_recent = 0xffffffffu;
  };
  Probe probe_mailbox();
  // After a command's store work, on the same worker thread, when the refresh that follows the command will
  // want it (probe_wanted_): the probe that refresh then uses, saving it a hop of its own.
  void note_probe();
  // server_.attempt() for a command's store work, followed by note_probe(). A probe is only good until the
  // next hop: each one drops it first. A failure, which the client hears of as a NO, is logged for the
  // administrator with the store's reason.
  template <typename Work>
  sdk::Task<std::optional<std::string>> attempt(Work work) {
    probe_.reset();
    return server_.attempt([this, work = std::move(work)]() mutable {
      try {
        work();
      } catch (const std::exception& failure) {
        server_.log().warn(fmt::format("imap {}: store: {}", client_.user, failure.what()));
        throw;
      }
      note_probe();
    });
  }
  // Tells the client these messages (snapshot indexes, ascending) are gone and drops them from the snapshot:
  // EXPUNGE responses, highest number first, or with QRESYNC one VANISHED.
  void report_expunged(const std::vector<std::size_t>& indexes);
  // The snapshot indexes a sequence set names, by sequence number or, with `uid`, by UID.
  std::optional<std::vector<std::size_t>> select_messages(const Value& set, bool uid) const;
  // Removes the \\Deleted messages (of `only`, when given: snapshot indexes), telling the client when `report`.
  // "FLAGS (...)" and, with CONDSTORE on, " MODSEQ (n)": what a flag change reports.
  std::string flags_item(const sdk::MessageEntry& message) const;
  // The message's flags as this session shows them: as stored, and \\Recent when it is recent here.
  std::string flags_text(const sdk::MessageEntry& message) const;
  // Before a FETCH shows these flags: a keyword the client has not been told of goes out first in FLAGS and
  // PERMANENTFLAGS (RFC 3501 section 7.2.6), so no FETCH ever names a flag the last FLAGS did not list.
  void announce_flags(std::string_view flags);
  // Adds the keywords of `flags` that keywords_ lacks; whether there were any.
  bool learn_keywords(std::string_view flags);
  void tell_flags();
  // \\Recent: the messages of the snapshot from UID `first` on are recent in this session.
  void take_recent(std::uint32_t first);
  std::size_t recent_count() const;
  sdk::Task<bool> expunge_deleted(bool report, const std::vector<std::size_t>& only = {});

  void untagged(std::string_view text) { pending_ += fmt::format("* {}\r\n", text); }
  void tagged(const Command& command, std::string_view status, std::string_view text) {
    tagged_at_ = pending_.size();
    answered_bad_ = status == "BAD";
    pending_ += fmt::format("{} {} {}\r\n", command.tag, status, text);
  }
  // Counts a command's answer: kBadInARow BAD answers in a row end the session.
  void count_reply(bool bad);
  // Whether the news of the mailbox goes out after this command (by name), before its tagged reply.
  static bool reports_news_after(std::string_view command);
  sdk::Task<void> flush();

  sdk::Connection& connection_;
  sdk::ServerContext& server_;
  const sdk::ListenerInfo& listener_;
  sdk::ClientInfo client_;
  StructureCache& structures_;
  MailboxLists& lists_;
  State state_ = State::not_authenticated;
  bool closing_ = false;
  unsigned bad_in_a_row_ = 0;
  bool answered_bad_ = false;  // whether the command under way was answered BAD (count_reply)
  std::string pending_;
  std::size_t tagged_at_ = 0;  // where in pending_ the last tagged reply starts
  // The selected mailbox: its name, whether EXAMINE opened it, and the messages as the client knows them
  // (sequence number = index + 1).
  std::string mailbox_;
  bool read_only_ = false;
  std::uint32_t uidvalidity_ = 0;
  // CONDSTORE (RFC 7162) is on for the session once the client used it: FETCH responses then carry MODSEQ.
  bool condstore_ = false;
  // QRESYNC (RFC 7162) is on once the client enabled it: expunges are then told as VANISHED.
  bool qresync_ = false;
  // IMAP4rev2 (RFC 9051) is on once the client enabled it: no RECENT, and SEARCH answers with ESEARCH.
  bool rev2_ = false;
  MessageList messages_;
  // The keywords the last FLAGS response listed, since the mailbox was selected.
  std::vector<std::string> keywords_;
  // The UIDs that are \\Recent in this session (RFC 3501 section 2.3.2), ascending; some may be expunged since.
  std::vector<std::uint32_t> recent_;
  RecentClaims& recent_claims_;
  // SEARCHRES (RFC 5182): the UIDs the last SEARCH RETURN (SAVE) found, ascending; what "$" stands for.
  std::vector<std::uint32_t> saved_;
  // The mailbox's change number that messages_ is the list of; 0 once the session changed its copy.
  std::uint64_t listed_modseq_ = 0;
  // See note_probe(). refreshed_: the command under way brought the snapshot up to date already.
  bool probe_wanted_ = false;
  std::optional<Probe> probe_;
  bool refreshed_ = false;
};

}  // namespace tern::imap
