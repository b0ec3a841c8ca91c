// One SQLite connection with the statements it prepared, kept for the next call that runs the same SQL.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tern::store_sqlite {

class Connection : public SQLite::Database {
 public:
  // A statement of the connection's, reset and its bindings cleared when this goes: a statement left on a row
  // would hold its read transaction open and keep the WAL from being checkpointed.
  class Query {
   public:
    // `busy` is the kept statement's mark, cleared when this goes; with `own`, that one is used instead.
    Query(SQLite::Statement& kept, bool* busy, std::unique_ptr<SQLite::Statement> own);
    ~Query();
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;
    SQLite::Statement* operator->() const { return &statement_; }
    SQLite::Statement& operator*() const { return statement_; }

   private:
    SQLite::Statement& statement_;
    std::unique_ptr<SQLite::Statement> own_;  // set when the kept one was in use already
    bool* busy_;
  };

  using SQLite::Database::Database;

  // The statement for `sql`, prepared on its first use and kept: preparing costs more than running most of the
  // store's queries. For SQL the code spells out, not SQL built from data (the statements are never dropped).
  // The caller holds the connection's lock, as for any use of it.
  Query query(std::string_view sql);

 private:
  struct Kept {
    std::unique_ptr<SQLite::Statement> statement;
    bool busy = false;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  std::unordered_map<std::string, Kept, Hash, std::equal_to<>> kept_;
};

}  // namespace tern::store_sqlite
