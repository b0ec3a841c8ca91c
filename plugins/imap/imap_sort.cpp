// SORT, THREAD, UID SORT and UID THREAD (RFC 5256): the messages SEARCH's keys choose, summarized from their
// headers and put in order by threading.cpp.
#include <fmt/ranges.h>

#include "addresses.hpp"
#include "imap_session.hpp"
#include "tern/sdk/header.hpp"
#include "threading.hpp"

namespace tern::imap {
namespace {

// `content` is the whole message, or empty when no header field is wanted.
MessageSummary summary_of(const sdk::MessageEntry& message, std::uint32_t number, std::string_view content) {
  MessageSummary summary;
  summary.number = number;
  summary.arrival = message.received;
  summary.size = message.size;
  if (content.empty()) return summary;
  const auto field = [content](std::string_view name) { return sdk::header_value(content, name).value_or(""); };
  summary.subject = field("Subject");
  summary.date = field("Date");
  summary.from = mime::first_mailbox(field("From"));
  summary.to = mime::first_mailbox(field("To"));
  summary.cc = mime::first_mailbox(field("Cc"));
  summary.message_id = field("Message-ID");
  summary.in_reply_to = field("In-Reply-To");
  summary.references = field("References");
  return summary;
}

}  // namespace

sdk::Task<std::optional<std::vector<MessageSummary>>> ImapSession::summarize_matches(const Command& command,
                                                                                     const std::vector<Value>& keys,
                                                                                     bool headers) {
  std::vector<std::string> contents;
  const std::optional<std::vector<std::size_t>> matches = co_await search_messages(command, keys, contents);
  if (!matches) co_return std::nullopt;
  const bool uid = command.name.starts_with("UID ");
  std::vector<MessageSummary> summaries;
  const auto summarize = [&](std::size_t index, std::string_view content) {
    const std::uint32_t number = uid ? messages_[index].uid : static_cast<std::uint32_t>(index + 1);
    summaries.push_back(summary_of(messages_[index], number, content));
  };
  if (!headers) {
    for (std::size_t index : *matches) summarize(index, {});
    co_return summaries;
  }
  // The search may have read every message already; otherwise only the matches are read, 256 at a time. One
  // expunged meanwhile sorts as a message without header fields.
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure = co_await attempt([&] {
    if (!contents.empty()) {
      for (std::size_t index : *matches) summarize(index, contents[index]);
      return;
    }
    constexpr std::size_t kBatch = 256;
    for (std::size_t start = 0; start < matches->size(); start += kBatch) {
      const std::size_t end = std::min(start + kBatch, matches->size());
      std::vector<std::int64_t> ids;
      for (std::size_t k = start; k < end; ++k) ids.push_back(messages_[(*matches)[k]].id);
      const std::vector<std::optional<std::string>> read = store.mailboxes().read_messages(client_.user, ids);
      for (std::size_t k = start; k < end; ++k) {
        const std::optional<std::string>& content = read[k - start];
        summarize((*matches)[k], content ? std::string_view(*content) : std::string_view());
      }
    }
  });
  if (failure) {
    tagged(command, "NO", "[UNAVAILABLE] Messages not available, try again");
    co_return std::nullopt;
  }
  co_return summaries;
}

sdk::Task<void> ImapSession::on_sort(const Command& command) {
  // SORT (criteria) charset search-keys
  const std::vector<Value>& arguments = command.arguments;
  const std::optional<std::vector<SortCriterion>> criteria =
      arguments.size() >= 3 && arguments[1].is_astring() ? parse_sort_criteria(arguments[0]) : std::nullopt;
  if (!criteria) {
    tagged(command, "BAD", fmt::format("Syntax: {} (sort criteria) charset search-keys", command.name));
    co_return;
  }
  if (!charset_supported(command, arguments[1])) co_return;
  const std::vector<Value> keys(arguments.begin() + 2, arguments.end());
  const std::optional<std::vector<MessageSummary>> summaries =
      co_await summarize_matches(command, keys, sort_needs_headers(*criteria));
  if (!summaries) co_return;
  const std::vector<std::uint32_t> order = sort_messages(*summaries, *criteria);
  untagged(fmt::format("SORT{}{}", order.empty() ? "" : " ", fmt::join(order, " ")));
  tagged(command, "OK", fmt::format("{} completed", command.name));
}

sdk::Task<void> ImapSession::on_thread(const Command& command) {
  // THREAD algorithm charset search-keys
  const std::vector<Value>& arguments = command.arguments;
  if (arguments.size() < 3 || arguments[0].kind != Value::Kind::atom || !arguments[1].is_astring()) {
    tagged(command, "BAD", fmt::format("Syntax: {} algorithm charset search-keys", command.name));
    co_return;
  }
  std::optional<ThreadAlgorithm> algorithm;
  if (arguments[0].is_atom("ORDEREDSUBJECT")) algorithm = ThreadAlgorithm::ordered_subject;
  if (arguments[0].is_atom("REFERENCES")) algorithm = ThreadAlgorithm::references;
  if (!algorithm) {
    tagged(command, "BAD", "Unknown thread algorithm: ORDEREDSUBJECT and REFERENCES are known");
    co_return;
  }
  if (!charset_supported(command, arguments[1])) co_return;
  const std::vector<Value> keys(arguments.begin() + 2, arguments.end());
  const std::optional<std::vector<MessageSummary>> summaries = co_await summarize_matches(command, keys, true);
  if (!summaries) co_return;
  const std::string threads = thread_messages(*summaries, *algorithm);
  untagged(fmt::format("THREAD{}{}", threads.empty() ? "" : " ", threads));
  tagged(command, "OK", fmt::format("{} completed", command.name));
}

}  // namespace tern::imap
