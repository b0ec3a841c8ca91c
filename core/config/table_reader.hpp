// Typed reads from one TOML table that name file, line and key on error and notice keys nobody read.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace toml {
inline namespace v3 {
class table;
class node;
}  // namespace v3
}  // namespace toml

namespace tern::config {

// Errors are appended to a shared list as "file:line: key.path: what is wrong".
class TableReader {
 public:
  // `table` may be null (an absent section): every read then finds nothing.
  TableReader(const toml::table* table, std::string file, std::string path, std::vector<std::string>& errors);

  std::optional<std::string> string(std::string_view key);
  std::optional<std::int64_t> integer(std::string_view key);
  std::optional<bool> boolean(std::string_view key);
  std::optional<std::vector<std::string>> strings(std::string_view key);
  std::optional<std::vector<std::int64_t>> integers(std::string_view key);
  // A sub-table; marks the key read. Null when absent or (with an error) of another type.
  const toml::table* table(std::string_view key);
  // The tables of an array of tables ([[a.b]]); marks the key read. Empty when absent or (with an error) of
  // another type.
  std::vector<const toml::table*> tables(std::string_view key);
  // Whether the key is there with a string value; does not mark it read.
  bool holds_string(std::string_view key) const;
  // Marks a key read without reading it, for keys handled elsewhere.
  void claim(std::string_view key);

  void error(std::string_view key, std::string_view what);
  // Records an error for every key of the table that was not read.
  void report_unknown_keys();

  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }

 private:
  const toml::node* find(std::string_view key);
  void type_error(std::string_view key, std::string_view expected);

  const toml::table* table_;
  std::string file_;
  std::string path_;
  std::vector<std::string>& errors_;
  std::set<std::string, std::less<>> read_;
};

// "file:line: key: what": the one shape every config error has.
std::string config_error(std::string_view file, std::int64_t line, std::string_view key, std::string_view what);

}  // namespace tern::config
