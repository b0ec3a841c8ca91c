#include "config/table_reader.hpp"

#include <fmt/format.h>

#include <toml++/toml.h>

namespace tern::config {

std::string config_error(std::string_view file, std::int64_t line, std::string_view key, std::string_view what) {
  return fmt::format("{}:{}: {}: {}", file, line, key, what);
}

TableReader::TableReader(const toml::table* table, std::string file, std::string path, std::vector<std::string>& errors)
    : table_(table), file_(std::move(file)), path_(std::move(path)), errors_(errors) {}

const toml::node* TableReader::find(std::string_view key) {
  read_.emplace(key);
  if (table_ == nullptr) return nullptr;
  return table_->get(key);
}

void TableReader::error(std::string_view key, std::string_view what) {
  std::int64_t line = 0;
  if (table_ != nullptr) {
    const toml::node* node = table_->get(key);
    line = node != nullptr ? node->source().begin.line : table_->source().begin.line;
  }
  std::string full = path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
  errors_.push_back(config_error(file_, line, full, what));
}

void TableReader::type_error(std::string_view key, std::string_view expected) {
  error(key, fmt::format("must be {}", expected));
}

std::optional<std::string> TableReader::string(std::string_view key) {
  const toml::node* node = find(key);
  if (node == nullptr) return std::nullopt;
  if (auto value = node->value<std::string>(); value && node->is_string()) return *value;
  type_error(key, "a string");
  return std::nullopt;
}

std::optional<std::int64_t> TableReader::integer(std::string_view key) {
  const toml::node* node = find(key);
  if (node == nullptr) return std::nullopt;
  if (node->is_integer()) return node->value<std::int64_t>();
  type_error(key, "an integer");
  return std::nullopt;
}

std::optional<bool> TableReader::boolean(std::string_view key) {
  const toml::node* node = find(key);
  if (node == nullptr) return std::nullopt;
  if (node->is_boolean()) return node->value<bool>();
  type_error(key, "true or false");
  return std::nullopt;
}

std::optional<std::vector<std::string>> TableReader::strings(std::string_view key) {
  const toml::node* node = find(key);
  if (node == nullptr) return std::nullopt;
  const toml::array* array = node->as_array();
  if (array == nullptr || !array->is_homogeneous(toml::node_type::string)) {
    if (array == nullptr || !array->empty()) {
      type_error(key, "an array of strings");
      return std::nullopt;
    }
  }
  std::vector<std::string> values;
  for (const toml::node& element : *array) values.push_back(*element.value<std::string>());
  return values;
}

std::optional<std::vector<std::int64_t>> TableReader::integers(std::string_view key) {
  const toml::node* node = find(key);
  if (node == nullptr) return std::nullopt;
  const toml::array* array = node->as_array();
  if (array == nullptr || !array->is_homogeneous(toml::node_type::integer)) {
    if (array == nullptr || !array->empty()) {
      type_error(key, "an array of integers");
      return std::nullopt;
    }
  }
  std::vector<std::int64_t> values;
  for (const toml::node& element : *array) values.push_back(*element.value<std::int64_t>());
  return values;
}

const toml::table* TableReader::table(std::string_view key) {
  const toml::node* node = find(key);
  if (node == nullptr) return nullptr;
  if (const toml::table* sub = node->as_table()) return sub;
  type_error(key, "a table");
  return nullptr;
}

std::vector<const toml::table*> TableReader::tables(std::string_view key) {
  std::vector<const toml::table*> found;
  const toml::node* node = find(key);
  if (node == nullptr) return found;
  const toml::array* array = node->as_array();
  if (array != nullptr) {
    for (const toml::node& item : *array) {
      if (const toml::table* sub = item.as_table()) found.push_back(sub);
    }
  }
  if (array == nullptr || found.size() != array->size()) {
    type_error(key, "an array of tables");
    found.clear();
  }
  return found;
}

bool TableReader::holds_string(std::string_view key) const {
  const toml::node* node = table_ != nullptr ? table_->get(key) : nullptr;
  return node != nullptr && node->is_string();
}

void TableReader::claim(std::string_view key) {
  read_.emplace(key);
}

void TableReader::report_unknown_keys() {
  if (table_ == nullptr) return;
  for (const auto& [key, node] : *table_) {
    if (!read_.contains(key.str())) error(key.str(), "unknown key");
  }
}

}  // namespace tern::config
