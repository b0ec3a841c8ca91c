#include "structure_cache.hpp"

namespace tern::imap {
namespace {

std::size_t cost(const std::string& key, const Structure& structure) {
  return key.size() + structure.envelope.size() + structure.body.size() + structure.bodystructure.size() + 64;
}

}  // namespace

std::optional<Structure> StructureCache::find(const std::string& content_id) {
  if (content_id.empty()) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto found = entries_.find(content_id);
  if (found == entries_.end()) return std::nullopt;
  order_.splice(order_.begin(), order_, found->second.position);
  return found->second.structure;
}

void StructureCache::insert(const std::string& content_id, Structure structure) {
  if (content_id.empty()) return;
  std::lock_guard lock(mutex_);
  if (entries_.contains(content_id)) return;
  size_ += cost(content_id, structure);
  order_.push_front(content_id);
  entries_.emplace(content_id, Entry{std::move(structure), order_.begin()});
  while (size_ > capacity_ && !order_.empty()) {
    auto oldest = entries_.find(order_.back());
    size_ -= cost(oldest->first, oldest->second.structure);
    entries_.erase(oldest);
    order_.pop_back();
  }
}

}  // namespace tern::imap
