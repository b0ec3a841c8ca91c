#include "threading.hpp"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "encoded_words.hpp"
#include "tern/sdk/text.hpp"

namespace tern::imap {
namespace {

constexpr std::size_t npos = std::string_view::npos;
constexpr const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};

bool wsp(char c) {
  return c == ' ' || c == '\t';
}

bool digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Up to four digits as a number; nullopt for anything else.
std::optional<int> small_number(std::string_view text) {
  if (!digits(text) || text.size() > 4) return std::nullopt;
  int value = 0;
  for (char c : text) value = value * 10 + (c - '0');
  return value;
}

// i;ascii-casemap (RFC 4790 section 9.2), the collation RFC 5256 compares strings with: a-z as A-Z.
std::string casemap(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; });
  return out;
}

// Step (1) of section 2.1: encoded-words decoded, tabs and line ends as spaces, each run of spaces as one.
std::string normalized_subject(std::string_view subject) {
  std::string out;
  for (char c : decode_encoded_words(subject)) {
    if (c == '\t' || c == '\r' || c == '\n') c = ' ';
    if (c != ' ' || out.empty() || out.back() != ' ') out += c;
  }
  return out;
}

// subj-blob = "[" *BLOBCHAR "]" *WSP at the start of `text`: its length, or 0.
std::size_t blob_length(std::string_view text) {
  if (text.empty() || text.front() != '[') return 0;
  const std::size_t close = text.find_first_of("[]", 1);
  if (close == npos || text[close] != ']') return 0;
  std::size_t end = close + 1;
  while (end < text.size() && wsp(text[end])) ++end;
  return end;
}

// *subj-blob subj-refwd, with subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":", at the start of
// `text`: its length, or 0.
std::size_t reply_prefix_length(std::string_view text) {
  std::size_t at = 0;
  while (const std::size_t blob = blob_length(text.substr(at))) at += blob;
  const std::string word = sdk::lower_ascii(text.substr(at, 3));
  if (word.starts_with("fwd")) {
    at += 3;
  } else if (word.starts_with("re") || word.starts_with("fw")) {
    at += 2;
  } else {
    return 0;
  }
  while (at < text.size() && wsp(text[at])) ++at;
  at += blob_length(text.substr(at));
  return at < text.size() && text[at] == ':' ? at + 1 : 0;
}

std::int64_t sent_time(const MessageSummary& message) {
  const std::optional<SentDate> sent = parse_sent_date(message.date);
  return sent ? sent->utc : message.arrival;
}

// The zone of a date in minutes east of UTC: "+0200", or one of RFC 5322 section 4.3's names (military
// letters and unknown names count as UTC, as that section advises).
int zone_minutes(std::string_view zone) {
  if (zone.size() == 5 && (zone[0] == '+' || zone[0] == '-') && digits(zone.substr(1))) {
    const int hours = (zone[1] - '0') * 10 + (zone[2] - '0');
    const int minutes = (zone[3] - '0') * 10 + (zone[4] - '0');
    return (zone[0] == '-' ? -1 : 1) * (hours * 60 + std::min(minutes, 59));
  }
  static const std::pair<const char*, int> kZones[] = {{"edt", -4}, {"est", -5}, {"cdt", -5}, {"cst", -6},
                                                       {"mdt", -6}, {"mst", -7}, {"pdt", -7}, {"pst", -8}};
  const std::string name = sdk::lower_ascii(zone);
  for (const auto& [known, hours] : kZones) {
    if (name == known) return hours * 60;
  }
  return 0;
}

// The message IDs of a field value ("<left@right>", white space inside taken out); text outside angle
// brackets, and brackets without an '@', are not IDs.
std::vector<std::string> message_ids(std::string_view value) {
  std::vector<std::string> ids;
  std::size_t at = value.find('<');
  while (at != npos) {
    const std::size_t close = value.find_first_of("<>", at + 1);
    if (close == npos) break;
    if (value[close] == '>') {
      std::string id;
      for (char c : value.substr(at, close + 1 - at)) {
        if (!wsp(c) && c != '\r' && c != '\n') id += c;
      }
      if (id.find('@') != std::string::npos) ids.push_back(std::move(id));
    }
    at = value[close] == '<' ? close : value.find('<', close);
  }
  return ids;
}

using SortValue = std::variant<std::int64_t, std::string>;

SortValue sort_value(const MessageSummary& message, SortKey key) {
  if (key == SortKey::size) return static_cast<std::int64_t>(message.size);
  if (key == SortKey::date) return sent_time(message);
  if (key == SortKey::subject) return casemap(base_subject(message.subject).text);
  if (key == SortKey::from) return casemap(message.from);
  if (key == SortKey::to) return casemap(message.to);
  if (key == SortKey::cc) return casemap(message.cc);
  return message.arrival;
}

constexpr std::size_t kNone = static_cast<std::size_t>(-1);

// Messages and dummies (messages referred to but not among those threaded) linked into trees. Nodes are
// indexes into `nodes`; a node whose `message` is null is a dummy.
class Forest {
 public:
  struct Node {
    const MessageSummary* message = nullptr;
    std::int64_t sent = 0;
    std::size_t parent = kNone;
    std::vector<std::size_t> children;
  };

  std::size_t add(const MessageSummary* message) {
    nodes.emplace_back();
    if (message) place(nodes.size() - 1, *message);
    return nodes.size() - 1;
  }
  void place(std::size_t node, const MessageSummary& message) {
    nodes[node].message = &message;
    nodes[node].sent = sent_time(message);
  }
  void link(std::size_t parent, std::size_t child) {
    nodes[child].parent = parent;
    nodes[parent].children.push_back(child);
  }
  void unlink(std::size_t child) {
    const std::size_t parent = std::exchange(nodes[child].parent, kNone);
    if (parent == kNone) return;
    std::vector<std::size_t>& siblings = nodes[parent].children;
    siblings.erase(std::find(siblings.begin(), siblings.end(), child));
  }
  // Whether `node` is `ancestor` or below it: linking `ancestor` under `node` would make a loop.
  bool descends_from(std::size_t node, std::size_t ancestor) const {
    for (; node != kNone; node = nodes[node].parent) {
      if (node == ancestor) return true;
    }
    return false;
  }
  // The nodes below `roots`, each after all of its descendants, so that work on children comes first.
  std::vector<std::size_t> bottom_up(const std::vector<std::size_t>& roots) const {
    std::vector<std::size_t> order;
    std::vector<std::size_t> pending(roots.rbegin(), roots.rend());
    while (!pending.empty()) {
      const std::size_t node = pending.back();
      pending.pop_back();
      order.push_back(node);
      pending.insert(pending.end(), nodes[node].children.begin(), nodes[node].children.end());
    }
    std::reverse(order.begin(), order.end());
    return order;
  }
  // A node's place in sent order: its message's sent date and number, or for a dummy its first child's.
  std::pair<std::int64_t, std::uint32_t> sent_order(std::size_t node) const {
    while (!nodes[node].message && !nodes[node].children.empty()) node = nodes[node].children.front();
    const Node& found = nodes[node];
    return {found.sent, found.message ? found.message->number : 0};
  }
  void sort_by_sent_date(std::vector<std::size_t>& siblings) const {
    std::stable_sort(siblings.begin(), siblings.end(),
                     [this](std::size_t a, std::size_t b) { return sent_order(a) < sent_order(b); });
  }
  // Every set of siblings in sent order, the deepest first: a dummy sorts by its first child, sorted by then.
  void sort_all(std::vector<std::size_t>& roots) {
    for (std::size_t node : bottom_up(roots)) sort_by_sent_date(nodes[node].children);
    sort_by_sent_date(roots);
  }

  // The THREAD response's thread lists: a node's number, then its only child the same way, or each of
  // several children in parentheses; a dummy writes only its children (RFC 5256 section 5's thread-list).
  std::string text(const std::vector<std::size_t>& roots) const {
    struct Item {
      std::size_t node;
      const char* text;  // written as it is when node is kNone
    };
    std::vector<Item> pending;  // the last is written next
    for (auto root = roots.rbegin(); root != roots.rend(); ++root) {
      pending.insert(pending.end(), {{kNone, ")"}, {*root, nullptr}, {kNone, "("}});
    }
    std::string out;
    while (!pending.empty()) {
      const Item item = pending.back();
      pending.pop_back();
      if (item.node == kNone) {
        out += item.text;
        continue;
      }
      const Node& node = nodes[item.node];
      if (node.message) out += fmt::format("{}", node.message->number);
      if (node.children.size() == 1) {
        pending.push_back({node.children.front(), nullptr});
      } else {
        for (auto child = node.children.rbegin(); child != node.children.rend(); ++child) {
          pending.insert(pending.end(), {{kNone, ")"}, {*child, nullptr}, {kNone, "("}});
        }
      }
      if (node.message && !node.children.empty()) pending.push_back({kNone, " "});
    }
    return out;
  }

  std::vector<Node> nodes;
};

// Section 4's ORDEREDSUBJECT: messages grouped by base subject; the first in sent order heads its thread,
// and the others are its children. Threads in the sent order of their first messages.
std::string ordered_subject_threads(const std::vector<MessageSummary>& messages) {
  Forest forest;
  std::vector<std::string> subjects;
  for (const MessageSummary& message : messages) {
    forest.add(&message);
    subjects.push_back(casemap(base_subject(message.subject).text));
  }
  std::vector<std::size_t> order(messages.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::tie(subjects[a], forest.nodes[a].sent, messages[a].number) <
           std::tie(subjects[b], forest.nodes[b].sent, messages[b].number);
  });
  std::vector<std::size_t> roots;
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (i > 0 && subjects[order[i]] == subjects[order[i - 1]]) {
      forest.link(roots.back(), order[i]);
    } else {
      roots.push_back(order[i]);
    }
  }
  forest.sort_by_sent_date(roots);
  return forest.text(roots);
}

// REFERENCES step 1: links along each message's references, then from its last reference to the message itself.
void link_references(Forest& forest, const std::vector<MessageSummary>& messages) {
  std::unordered_map<std::string, std::size_t> by_id;  // Message-IDs compare case-sensitively
  const auto node_of = [&](const std::string& id) {
    const auto [found, added] = by_id.try_emplace(id, 0);
    if (added) found->second = forest.add(nullptr);
    return found->second;
  };
  for (const MessageSummary& message : messages) {
    const std::vector<std::string> ids = message_ids(message.message_id);
    const auto known = ids.empty() ? by_id.end() : by_id.find(ids.front());
    std::size_t self = 0;
    if (known != by_id.end() && !forest.nodes[known->second].message) {
      self = known->second;
      forest.place(self, message);
    } else {
      // Without an ID, or with one an earlier message has, the message is found by no reference.
      self = forest.add(&message);
      if (!ids.empty() && known == by_id.end()) by_id.emplace(ids.front(), self);
    }
    std::vector<std::string> references = message_ids(message.references);
    if (references.empty()) {
      std::vector<std::string> replied_to = message_ids(message.in_reply_to);
      if (!replied_to.empty()) references.push_back(std::move(replied_to.front()));
    }
    for (std::size_t i = 0; i + 1 < references.size(); ++i) {
      const std::size_t parent = node_of(references[i]);
      const std::size_t child = node_of(references[i + 1]);
      // An existing parent stays: a References field cut short by a client is least reliable at its end.
      if (forest.nodes[child].parent == kNone && !forest.descends_from(parent, child)) forest.link(parent, child);
    }
    forest.unlink(self);
    if (references.empty()) continue;
    const std::size_t parent = node_of(references.back());
    if (!forest.descends_from(parent, self)) forest.link(parent, self);
  }
}

// REFERENCES step 3: dummies go, without children, or with their children promoted, unless that would put more than
// one child at the top. Returns the top level left.
std::vector<std::size_t> prune_dummies(Forest& forest, const std::vector<std::size_t>& roots) {
  const auto prune = [&](const std::vector<std::size_t>& siblings, bool top) {
    std::vector<std::size_t> kept;
    for (std::size_t node : siblings) {
      const Forest::Node& current = forest.nodes[node];
      if (current.message || (top && current.children.size() > 1)) {
        kept.push_back(node);
        continue;
      }
      for (std::size_t child : current.children) {
        forest.nodes[child].parent = current.parent;
        kept.push_back(child);
      }
    }
    return kept;
  };
  for (std::size_t node : forest.bottom_up(roots))
    forest.nodes[node].children = prune(forest.nodes[node].children, false);
  return prune(roots, true);
}

// REFERENCES step 5: top-level threads with the same base subject gather, under the thread that is not a reply, or
// under a dummy. Returns the top level left.
std::vector<std::size_t> gather_by_subject(Forest& forest, const std::vector<std::size_t>& roots) {
  const auto subject_of = [&](std::size_t node) {
    const Forest::Node& top = forest.nodes[node];
    return base_subject((top.message ? top.message : forest.nodes[top.children.front()].message)->subject);
  };
  std::vector<BaseSubject> subjects;
  struct Holder {
    std::size_t node;
    bool reply_or_forward;
  };
  std::unordered_map<std::string, Holder> table;
  for (std::size_t root : roots) {
    subjects.push_back(subject_of(root));
    if (subjects.back().text.empty()) continue;
    const bool dummy = !forest.nodes[root].message;
    const Holder current{root, !dummy && subjects.back().reply_or_forward};
    const auto [entry, added] = table.try_emplace(casemap(subjects.back().text), current);
    const bool held_dummy = !forest.nodes[entry->second.node].message;
    if (!added && ((!held_dummy && dummy) || (entry->second.reply_or_forward && !current.reply_or_forward))) {
      entry->second = current;
    }
  }
  std::vector<bool> gone(forest.nodes.size());
  std::vector<std::size_t> added_dummies;
  for (std::size_t i = 0; i < roots.size(); ++i) {
    const std::size_t root = roots[i];
    if (subjects[i].text.empty() || forest.nodes[root].parent != kNone) continue;
    Holder& held = table.at(casemap(subjects[i].text));
    if (held.node == root) continue;
    const bool dummy = !forest.nodes[root].message;
    const bool held_dummy = !forest.nodes[held.node].message;
    if (dummy && held_dummy) {
      for (std::size_t child : forest.nodes[root].children) forest.link(held.node, child);
      forest.nodes[root].children.clear();
      gone[root] = true;
    } else if (held_dummy || (subjects[i].reply_or_forward && !held.reply_or_forward)) {
      forest.link(held.node, root);
    } else {
      const std::size_t joined = forest.add(nullptr);
      forest.link(joined, held.node);
      forest.link(joined, root);
      held = {joined, false};
      added_dummies.push_back(joined);
    }
  }
  std::vector<std::size_t> top;
  for (std::size_t root : roots) {
    if (!gone[root] && forest.nodes[root].parent == kNone) top.push_back(root);
  }
  top.insert(top.end(), added_dummies.begin(), added_dummies.end());
  return top;
}

// Section 4's REFERENCES, steps 1 to 6.
std::string reference_threads(const std::vector<MessageSummary>& messages) {
  Forest forest;
  link_references(forest, messages);
  // (2) The nodes without a parent head the threads.
  std::vector<std::size_t> roots;
  for (std::size_t node = 0; node < forest.nodes.size(); ++node) {
    if (forest.nodes[node].parent == kNone) roots.push_back(node);
  }
  roots = prune_dummies(forest, roots);
  // (4) The top in sent order, a dummy by its first child.
  for (std::size_t root : roots) {
    if (!forest.nodes[root].message) forest.sort_by_sent_date(forest.nodes[root].children);
  }
  forest.sort_by_sent_date(roots);
  std::vector<std::size_t> top = gather_by_subject(forest, roots);
  // (6) Every set of siblings in sent order.
  forest.sort_all(top);
  return forest.text(top);
}

}  // namespace

BaseSubject base_subject(std::string_view subject) {
  BaseSubject result;
  std::string text = normalized_subject(subject);
  for (;;) {
    // (2) subj-trailer at the end: "(fwd)" or white space.
    for (;;) {
      if (!text.empty() && wsp(text.back())) {
        text.pop_back();
      } else if (text.size() >= 5 && sdk::lower_ascii(text.substr(text.size() - 5)) == "(fwd)") {
        text.resize(text.size() - 5);
        result.reply_or_forward = true;
      } else {
        break;
      }
    }
    // (3) to (5): subj-leaders, and a subj-blob that does not hold all that is left, until neither is there.
    for (bool changed = true; changed;) {
      changed = false;
      for (;;) {
        if (!text.empty() && wsp(text.front())) {
          text.erase(0, 1);
        } else if (const std::size_t leader = reply_prefix_length(text)) {
          text.erase(0, leader);
          result.reply_or_forward = true;
        } else {
          break;
        }
        changed = true;
      }
      const std::size_t blob = blob_length(text);
      if (blob > 0 && blob < text.size()) {
        text.erase(0, blob);
        changed = true;
      }
    }
    // (6) "[fwd: ...]" around it all: unwrap, and start again from (2).
    if (text.size() >= 6 && sdk::lower_ascii(text.substr(0, 5)) == "[fwd:" && text.back() == ']') {
      text = text.substr(5, text.size() - 6);
      result.reply_or_forward = true;
      continue;
    }
    break;
  }
  result.text = std::move(text);
  return result;
}

std::optional<SentDate> parse_sent_date(std::string_view value) {
  // Comments out, commas and folding as spaces; then words, with white space around ':' joined (obs-time).
  std::string text;
  int depth = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (depth > 0 && c == '\\') {
      ++i;
    } else if (c == '(') {
      ++depth;
    } else if (depth > 0 && c == ')') {
      --depth;
    } else if (depth == 0) {
      text += c == ',' || c == '\t' || c == '\r' || c == '\n' ? ' ' : c;
    }
  }
  std::vector<std::string> words;
  for (std::size_t at = text.find_first_not_of(' '); at != npos; at = text.find_first_not_of(' ', at)) {
    const std::size_t end = std::min(text.find(' ', at), text.size());
    const std::string word = text.substr(at, end - at);
    if (!words.empty() && (words.back().back() == ':' || word.front() == ':')) {
      words.back() += word;
    } else {
      words.push_back(word);
    }
    at = end;
  }
  std::size_t at = 0;
  if (!words.empty() && !digits(words[0].substr(0, 1))) ++at;  // the day of the week
  if (words.size() < at + 3) return std::nullopt;
  const std::optional<int> day = small_number(words[at]);
  const std::string month_name = sdk::lower_ascii(words[at + 1].substr(0, 3));
  const auto month = std::find(std::begin(kMonths), std::end(kMonths), month_name);
  std::optional<int> year = words[at + 2].size() >= 2 ? small_number(words[at + 2]) : std::nullopt;
  if (!day || month == std::end(kMonths) || !year) return std::nullopt;
  if (words[at + 2].size() == 2) *year += *year < 50 ? 2000 : 1900;  // RFC 5322 section 4.3
  if (words[at + 2].size() == 3) *year += 1900;
  const std::chrono::year_month_day date{std::chrono::year(*year),
                                         std::chrono::month(static_cast<unsigned>(month - std::begin(kMonths) + 1)),
                                         std::chrono::day(static_cast<unsigned>(*day))};
  if (!date.ok()) return std::nullopt;
  int seconds = 0;
  at += 3;
  if (at < words.size() && words[at].find(':') != npos) {
    std::vector<std::optional<int>> parts;
    for (std::size_t start = 0; start <= words[at].size();) {
      const std::size_t colon = std::min(words[at].find(':', start), words[at].size());
      parts.push_back(small_number(std::string_view(words[at]).substr(start, colon - start)));
      start = colon + 1;
    }
    if (parts.size() < 2 || parts.size() > 3 || !parts[0] || !parts[1] || *parts[0] > 23 || *parts[1] > 59) {
      return std::nullopt;
    }
    if (parts.size() == 3 && (!parts[2] || *parts[2] > 60)) return std::nullopt;
    seconds = *parts[0] * 3600 + *parts[1] * 60 + (parts.size() == 3 ? *parts[2] : 0);
    ++at;
  }
  const int zone = at < words.size() ? zone_minutes(words[at]) : 0;
  SentDate sent;
  sent.day = std::chrono::sys_days(date).time_since_epoch().count();
  sent.utc = sent.day * 86400 + seconds - static_cast<std::int64_t>(zone) * 60;
  return sent;
}

std::optional<std::vector<SortCriterion>> parse_sort_criteria(const Value& program) {
  static const std::pair<const char*, SortKey> kKeys[] = {
      {"ARRIVAL", SortKey::arrival}, {"CC", SortKey::cc},           {"DATE", SortKey::date}, {"FROM", SortKey::from},
      {"SIZE", SortKey::size},       {"SUBJECT", SortKey::subject}, {"TO", SortKey::to}};
  if (program.kind != Value::Kind::list || program.items.empty()) return std::nullopt;
  std::vector<SortCriterion> criteria;
  bool reverse = false;
  for (const Value& item : program.items) {
    if (item.kind != Value::Kind::atom || (reverse && item.is_atom("REVERSE"))) return std::nullopt;
    if (item.is_atom("REVERSE")) {
      reverse = true;
      continue;
    }
    const auto known =
        std::find_if(std::begin(kKeys), std::end(kKeys), [&item](const auto& key) { return item.is_atom(key.first); });
    if (known == std::end(kKeys)) return std::nullopt;
    criteria.push_back({known->second, std::exchange(reverse, false)});
  }
  if (reverse) return std::nullopt;
  return criteria;
}

bool sort_needs_headers(const std::vector<SortCriterion>& criteria) {
  return std::any_of(criteria.begin(), criteria.end(), [](const SortCriterion& criterion) {
    return criterion.key != SortKey::arrival && criterion.key != SortKey::size;
  });
}

std::vector<std::uint32_t> sort_messages(const std::vector<MessageSummary>& messages,
                                         const std::vector<SortCriterion>& criteria) {
  std::vector<std::vector<SortValue>> values(messages.size());
  for (std::size_t i = 0; i < messages.size(); ++i) {
    for (const SortCriterion& criterion : criteria) values[i].push_back(sort_value(messages[i], criterion.key));
  }
  std::vector<std::size_t> order(messages.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    for (std::size_t c = 0; c < criteria.size(); ++c) {
      if (values[a][c] == values[b][c]) continue;
      return (values[a][c] < values[b][c]) != criteria[c].reverse;
    }
    return messages[a].number < messages[b].number;
  });
  std::vector<std::uint32_t> numbers;
  for (std::size_t i : order) numbers.push_back(messages[i].number);
  return numbers;
}

std::string thread_messages(const std::vector<MessageSummary>& messages, ThreadAlgorithm algorithm) {
  return algorithm == ThreadAlgorithm::references ? reference_threads(messages) : ordered_subject_threads(messages);
}

}  // namespace tern::imap
