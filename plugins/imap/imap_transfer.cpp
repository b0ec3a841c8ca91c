// Messages into and between mailboxes: APPEND, COPY, MOVE and UID EXPUNGE (with the UIDPLUS codes of
// RFC 4315 and MOVE of RFC 6851).
#include <algorithm>
#include <ctime>

#include "imap_session.hpp"
#include "tern/sdk/text.hpp"

namespace tern::imap {
namespace {

constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// APPEND's date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (day may have a leading space). Seconds since the epoch.
std::optional<std::int64_t> parse_date_time(std::string_view text) {
  int day = 0;
  char month[4] = {};
  int year = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  char sign = 0;
  int zone = 0;
  const std::string copy(text);
  if (std::sscanf(copy.c_str(), "%d-%3s-%d %d:%d:%d %c%4d", &day, month, &year, &hour, &minute, &second, &sign,
                  &zone) != 8 ||
      (sign != '+' && sign != '-')) {
    return std::nullopt;
  }
  const auto found = std::find_if(std::begin(kMonths), std::end(kMonths), [&month](const char* name) {
    return sdk::lower_ascii(name) == sdk::lower_ascii(month);
  });
  if (found == std::end(kMonths) || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  std::tm utc{};
  utc.tm_year = year - 1900;
  utc.tm_mon = static_cast<int>(found - std::begin(kMonths));
  utc.tm_mday = day;
  utc.tm_hour = hour;
  utc.tm_min = minute;
  utc.tm_sec = second;
  const std::int64_t offset = (zone / 100 * 3600 + zone % 100 * 60) * (sign == '+' ? 1 : -1);
  return static_cast<std::int64_t>(::timegm(&utc)) - offset;
}

std::string uid_list(const std::vector<std::uint32_t>& uids) {
  std::string out;
  for (std::uint32_t uid : uids) out += fmt::format("{}{}", out.empty() ? "" : ",", uid);
  return out;
}

}  // namespace

sdk::Task<void> ImapSession::on_append(const Command& command) {
  const auto& arguments = command.arguments;
  if (arguments.size() < 2 || arguments.size() > 4 || !arguments[0].is_astring() ||
      arguments.back().kind != Value::Kind::string) {
    tagged(command, "BAD", "Syntax: APPEND mailbox [(flags)] [date-time] literal");
    co_return;
  }
  std::string flags;
  std::int64_t received = 0;
  for (std::size_t i = 1; i + 1 < arguments.size(); ++i) {
    if (arguments[i].kind == Value::Kind::list) {
      for (const Value& flag : arguments[i].items) flags += (flags.empty() ? "" : " ") + flag.text;
    } else if (auto date = parse_date_time(arguments[i].text); date && arguments[i].kind == Value::Kind::string) {
      received = *date;
    } else {
      tagged(command, "BAD", "Syntax: APPEND mailbox [(flags)] [date-time] literal");
      co_return;
    }
  }
  const std::optional<std::string> mailbox = mailbox_argument(arguments[0]);
  if (!mailbox) {
    tagged(command, "BAD", "Mailbox name is not valid modified UTF-7");
    co_return;
  }
  const std::string& name = *mailbox;
  sdk::MessageEntry appended;
  sdk::MailStore& store = server_.store();
  const std::string& message = arguments.back().text;
  bool over_quota = false;
  const std::optional<std::string> failure = co_await attempt([&] {
    over_quota = !store.mailboxes().quota(client_.user).room_for(message.size(), 1);
    if (!over_quota) appended = store.mailboxes().append_message(client_.user, name, message, flags, received);
  });
  if (!failure && over_quota) {
    tagged(command, "NO", "[OVERQUOTA] Mailbox quota exceeded");
    co_return;
  }
  if (failure) {
    // The store names a missing mailbox; anything else is a temporary failure.
    const bool missing = failure->find("no mailbox") != std::string::npos;
    tagged(command, "NO", missing ? "[TRYCREATE] No such mailbox" : "[UNAVAILABLE] Message not stored, try again");
    co_return;
  }
  server_.mailbox_changed({client_.user});
  const std::string uidvalidity = appended.unique_id.substr(0, appended.unique_id.find('.'));
  if (state_ == State::selected && name == mailbox_) co_await refresh();
  tagged(command, "OK", fmt::format("[APPENDUID {} {}] APPEND completed", uidvalidity, appended.uid));
}

sdk::Task<void> ImapSession::on_copy(const Command& command) {
  const bool uid = command.name.starts_with("UID ");
  const bool move = command.name.ends_with("MOVE");
  if (command.arguments.size() != 2 || !command.arguments[1].is_astring()) {
    tagged(command, "BAD", fmt::format("Syntax: {} set mailbox", command.name));
    co_return;
  }
  if (move && read_only_) {
    tagged(command, "NO", "[READ-ONLY] Mailbox is read-only");
    co_return;
  }
  std::optional<std::vector<std::size_t>> indexes = select_messages(command.arguments[0], uid);
  if (!indexes) {
    tagged(command, "BAD", "Bad sequence set");
    co_return;
  }
  const std::optional<std::string> mailbox = mailbox_argument(command.arguments[1]);
  if (!mailbox) {
    tagged(command, "BAD", "Mailbox name is not valid modified UTF-7");
    co_return;
  }
  const std::string& target = *mailbox;
  std::vector<std::int64_t> ids;
  for (std::size_t index : *indexes) ids.push_back(messages_[index].id);
  std::pair<std::uint32_t, std::vector<std::pair<std::uint32_t, std::uint32_t>>> copied;
  sdk::MailStore& store = server_.store();
  std::uint64_t octets = 0;
  for (std::size_t index : *indexes) octets += messages_[index].size;
  bool over_quota = false;
  const std::optional<std::string> failure = co_await attempt([&] {
    // A move takes no more room than before; a copy adds its messages to the user's usage.
    over_quota = !move && !store.mailboxes().quota(client_.user).room_for(octets, ids.size());
    if (over_quota) return;
    copied = store.mailboxes().copy_messages(client_.user, ids, target);
    if (move) store.mailboxes().remove_messages(client_.user, ids);
  });
  if (!failure && over_quota) {
    tagged(command, "NO", "[OVERQUOTA] Mailbox quota exceeded");
    co_return;
  }
  if (failure) {
    tagged(command, "NO",
           failure->find("no mailbox") != std::string::npos ? "[TRYCREATE] No such mailbox"
                                                            : "[UNAVAILABLE] Not copied, try again");
    co_return;
  }
  server_.mailbox_changed({client_.user});
  std::vector<std::uint32_t> from;
  std::vector<std::uint32_t> to;
  for (const auto& [source, created] : copied.second) {
    from.push_back(source);
    to.push_back(created);
  }
  const std::string code =
      from.empty() ? std::string() : fmt::format("[COPYUID {} {} {}] ", copied.first, uid_list(from), uid_list(to));
  if (!move) {
    tagged(command, "OK", fmt::format("{}{} completed", code, command.name));
    co_return;
  }
  // RFC 6851: the COPYUID comes untagged, then the EXPUNGEs, highest number first.
  if (!code.empty()) untagged(fmt::format("OK {}Moved", code));
  listed_modseq_ = 0;
  report_expunged(*indexes);
  tagged(command, "OK", fmt::format("{} completed", command.name));
}

sdk::Task<void> ImapSession::on_uid_expunge(const Command& command) {
  // UIDPLUS: only the \Deleted messages among these UIDs go.
  if (command.arguments.size() != 1) {
    tagged(command, "BAD", "Syntax: UID EXPUNGE set");
    co_return;
  }
  if (read_only_) {
    tagged(command, "NO", "[READ-ONLY] Mailbox is read-only");
    co_return;
  }
  std::optional<std::vector<std::size_t>> indexes = select_messages(command.arguments[0], true);
  if (!indexes) {
    tagged(command, "BAD", "Bad UID set");
    co_return;
  }
  // A set that names no message here expunges nothing (expunge_deleted() takes no indexes as "all").
  if (indexes->empty()) {
    tagged(command, "OK", "UID EXPUNGE completed");
    co_return;
  }
  const bool done = co_await expunge_deleted(true, *indexes);
  if (!done) {
    tagged(command, "NO", "[UNAVAILABLE] Expunge failed, try again");
    co_return;
  }
  tagged(command, "OK", "UID EXPUNGE completed");
}

}  // namespace tern::imap
