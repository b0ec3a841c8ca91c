// ENVELOPE and BODYSTRUCTURE of messages parsed already, by stored content: a message is parsed once, not at
// every FETCH, and copies of one message (several recipients, COPY) share the entry.
#pragma once

#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace tern::imap {

struct Structure {
  std::string envelope;
  std::string body;           // BODY: the non-extensible form
  std::string bodystructure;  // BODYSTRUCTURE
};

// Least recently used entries go first once the cache holds `capacity` octets. Thread-safe: one cache serves
// every session of the plugin, on every loop.
class StructureCache {
 public:
  explicit StructureCache(std::size_t capacity) : capacity_(capacity) {}

  std::optional<Structure> find(const std::string& content_id);
  void insert(const std::string& content_id, Structure structure);

 private:
  using Order = std::list<std::string>;
  struct Entry {
    Structure structure;
    Order::iterator position;
  };

  std::mutex mutex_;
  std::size_t capacity_;
  std::size_t size_ = 0;
  Order order_;  // most recently used first
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace tern::imap
