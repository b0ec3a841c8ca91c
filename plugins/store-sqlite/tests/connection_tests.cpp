// The kept statements of a store connection (connection.hpp).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <optional>
#include <string>

#include "connection.hpp"

namespace {

using tern::store_sqlite::Connection;

struct Database {
  Database() {
    path = std::filesystem::temp_directory_path() / ("tern-connection-" + std::to_string(::getpid()) + ".db");
    std::filesystem::remove(path);
    writer.emplace(path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    writer->exec("PRAGMA journal_mode = WAL");
    writer->exec("CREATE TABLE t (n INTEGER)");
    writer->exec("INSERT INTO t VALUES (1), (2), (3)");
    reader.emplace(path.string(), SQLite::OPEN_READONLY);
  }
  ~Database() {
    reader.reset();
    writer.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
  }
  std::filesystem::path path;
  std::optional<Connection> writer;
  std::optional<Connection> reader;
};

}  // namespace

TEST_CASE("A kept statement left on a row holds no read transaction once its use ends") {
  Database db;
  {
    Connection::Query first = db.reader->query("SELECT n FROM t ORDER BY n");
    REQUIRE(first->executeStep());
    CHECK(first->getColumn(0).getInt() == 1);
  }
  db.writer->exec("INSERT INTO t VALUES (4)");
  // A checkpoint that empties the WAL waits for every reader: one still open would leave it busy (1).
  CHECK(db.writer->execAndGet("PRAGMA wal_checkpoint(TRUNCATE)").getInt() == 0);
  // The next use starts from the first row again, with no binding left over.
  Connection::Query again = db.reader->query("SELECT n FROM t ORDER BY n");
  REQUIRE(again->executeStep());
  CHECK(again->getColumn(0).getInt() == 1);
}

TEST_CASE("The same SQL used twice at once runs as two statements") {
  Database db;
  const char* sql = "SELECT n FROM t WHERE n >= ? ORDER BY n";
  Connection::Query outer = db.reader->query(sql);
  outer->bind(1, 2);
  REQUIRE(outer->executeStep());
  {
    Connection::Query inner = db.reader->query(sql);
    inner->bind(1, 3);
    REQUIRE(inner->executeStep());
    CHECK(inner->getColumn(0).getInt() == 3);
  }
  CHECK(outer->getColumn(0).getInt() == 2);
  REQUIRE(outer->executeStep());
  CHECK(outer->getColumn(0).getInt() == 3);
}
