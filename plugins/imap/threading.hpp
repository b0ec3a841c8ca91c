// SORT and THREAD (RFC 5256) over the messages a search chose: the base subject (section 2.1), the sent date
// (section 2.2), the sort order, and the ORDEREDSUBJECT and REFERENCES thread algorithms. Pure functions of a
// small summary per message, tested apart from any store or connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imap_syntax.hpp"

namespace tern::imap {

// What SORT and THREAD know of one message. `number` names it in the response: its sequence number, or its
// UID for UID SORT and UID THREAD. Either way numbers ascend in mailbox order, which breaks every tie.
struct MessageSummary {
  std::uint32_t number = 0;
  std::int64_t arrival = 0;  // INTERNALDATE, seconds since the epoch
  std::uint64_t size = 0;    // RFC822.SIZE
  // The first field of each name, unfolded, as written; empty when absent. The address fields hold only
  // the local part of their first address (IMAP's addr-mailbox), which is what SORT compares.
  std::string subject, date, from, to, cc, message_id, in_reply_to, references;
};

// RFC 5256 section 2.1: the subject without "Re:", "Fwd:", "[list]" and "(fwd)" artifacts, its encoded-words
// decoded and its white space collapsed; `reply_or_forward` when a "Re:"/"Fw:"/"Fwd:", a "(fwd)" or a
// "[fwd: ...]" was taken off (a list tag alone does not count).
struct BaseSubject {
  std::string text;
  bool reply_or_forward = false;
};
BaseSubject base_subject(std::string_view subject);

// A Date field's value (RFC 5322 section 3.3, the obsolete forms included: two-digit years, comments,
// "GMT" and the US zone names). `day` is the date as written, in days since the epoch, what SEARCH SENTON
// compares; `utc` the moment in seconds since the epoch, what SORT DATE compares. A missing time is
// midnight, a missing or unknown zone UTC. nullopt when no date can be read.
struct SentDate {
  std::int64_t day = 0;
  std::int64_t utc = 0;
};
std::optional<SentDate> parse_sent_date(std::string_view value);

enum class SortKey { arrival, cc, date, from, size, subject, to };
struct SortCriterion {
  SortKey key;
  bool reverse = false;
};

// A SORT program such as (REVERSE DATE SUBJECT); nullopt when it is not a non-empty list of known keys,
// each with at most one REVERSE before it.
std::optional<std::vector<SortCriterion>> parse_sort_criteria(const Value& program);

// Whether any criterion compares a header field, so that the messages must be read.
bool sort_needs_headers(const std::vector<SortCriterion>& criteria);

// The messages' numbers in the order the criteria give, ties in mailbox order. Strings compare with the
// i;ascii-casemap collation; a date that cannot be read is the message's arrival time (RFC 5256 section 2.2).
std::vector<std::uint32_t> sort_messages(const std::vector<MessageSummary>& messages,
                                         const std::vector<SortCriterion>& criteria);

enum class ThreadAlgorithm { ordered_subject, references };

// The threads of the messages, as the THREAD response lists them after its name: "(1 2)(3 (4)(5))", empty
// for no message. ORDEREDSUBJECT groups by base subject; REFERENCES links messages by Message-ID,
// References and In-Reply-To, then gathers top-level threads of the same base subject (RFC 5256 section 4).
std::string thread_messages(const std::vector<MessageSummary>& messages, ThreadAlgorithm algorithm);

}  // namespace tern::imap
