// Entry point of the store-sqlite plugin: registers the "sqlite" store.
#include <filesystem>

#include "sqlite_store.hpp"
#include "tern/sdk/plugin.hpp"

namespace {

using tern::store_sqlite::SqliteStore;

class SqliteStoreFactory final : public tern::sdk::StoreFactory {
 public:
  SqliteStoreFactory(std::string database, std::string blobs, std::size_t inline_limit)
      : database_(std::move(database)), blobs_(std::move(blobs)), inline_limit_(inline_limit) {}

  std::unique_ptr<tern::sdk::MailStore> open(const std::filesystem::path& data_dir) const override {
    std::filesystem::path database = database_.empty() ? data_dir / "tern.db" : std::filesystem::path(database_);
    std::filesystem::path blobs = blobs_.empty() ? data_dir / "blobs" : std::filesystem::path(blobs_);
    return std::make_unique<SqliteStore>(database, blobs, inline_limit_);
  }

 private:
  std::string database_;
  std::string blobs_;
  std::size_t inline_limit_;
};

}  // namespace

TERN_PLUGIN("store-sqlite", "0.1.0", "store:sqlite") {
  const auto& config = registrar.config();
  const auto inline_limit =
      static_cast<std::size_t>(config.size("inline_max_size", SqliteStore::kDefaultInlineLimit, 0, 16 * 1024 * 1024));
  registrar.add_store("sqlite",
                      std::make_shared<SqliteStoreFactory>(config.get_string("database").value_or(""),
                                                           config.get_string("blobs").value_or(""), inline_limit));
}
