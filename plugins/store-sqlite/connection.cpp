// One SQLite connection with the statements it prepared (see connection.hpp).
#include "connection.hpp"

namespace tern::store_sqlite {

Connection::Query::Query(SQLite::Statement& kept, bool* busy, std::unique_ptr<SQLite::Statement> own)
    : statement_(own ? *own : kept), own_(std::move(own)), busy_(own_ ? nullptr : busy) {}

Connection::Query::~Query() {
  if (own_) return;  // finalized with it
  // tryReset: sqlite3_reset repeats the last step's error, which the caller has had already.
  statement_.tryReset();
  try {
    statement_.clearBindings();
  } catch (const SQLite::Exception&) {
    // sqlite3_clear_bindings always succeeds; the wrapper declares it may throw.
  }
  if (busy_ != nullptr) *busy_ = false;
}

Connection::Query Connection::query(std::string_view sql) {
  auto found = kept_.find(sql);
  if (found == kept_.end()) {
    found = kept_.emplace(std::string(sql), Kept{std::make_unique<SQLite::Statement>(*this, std::string(sql))}).first;
  }
  Kept& kept = found->second;
  // The same SQL twice at once (a query run while another of the same text is on a row) gets a statement of
  // its own for the while.
  if (kept.busy) return Query(*kept.statement, nullptr, std::make_unique<SQLite::Statement>(*this, std::string(sql)));
  kept.busy = true;
  return Query(*kept.statement, &kept.busy, nullptr);
}

}  // namespace tern::store_sqlite
