#include "server/event_search.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "engine/event_store.h"
#include "engine/normalize.h"
#include "google/protobuf/util/time_util.h"
#include "simdjson.h"
#include "store/keys.h"

namespace pantherd::server {
namespace {

using google::protobuf::util::TimeUtil;

// Events read from the store per chunk of a table scan.
constexpr size_t kScanChunk = 256;
// The progress handler runs every this many SQLite VM instructions.
constexpr int kProgressInstructions = 1000;

// The fields pantherd adds to every normalised event (engine/normalize.cc).
constexpr const char* kPantherFields[] = {
    "p_log_type",     "p_row_id",           "p_event_time",       "p_parse_time", "p_source_id",
    "p_source_label", "p_any_ip_addresses", "p_any_domain_names", "p_any_emails", "p_any_usernames",
};

// The top-level fields of the Okta System Log (LogEvent).
constexpr const char* kOktaFields[] = {
    "uuid",
    "published",
    "eventType",
    "version",
    "severity",
    "legacyEventType",
    "displayMessage",
    "actor",
    "client",
    "device",
    "authenticationContext",
    "securityContext",
    "debugContext",
    "outcome",
    "target",
    "transaction",
    "request",
};

struct TableDef {
  std::string log_type;
  std::string name;
  std::vector<std::string> columns;
  int time_column = -1;  // p_event_time
};

TableDef MakeTable(const std::string& log_type) {
  TableDef t;
  t.log_type = log_type;
  t.name = SearchTableName(log_type);
  if (log_type == "Okta.SystemLog") {
    for (const char* f : kOktaFields) t.columns.emplace_back(f);
  }
  for (const char* f : kPantherFields) {
    if (std::strcmp(f, "p_event_time") == 0) t.time_column = static_cast<int>(t.columns.size());
    t.columns.emplace_back(f);
  }
  return t;
}

// Why the progress handler stopped the query.
enum class StopReason { kNone, kTimeout, kCancelled };

struct SearchState {
  const store::Store* store = nullptr;
  absl::Time since;
  absl::Time until;
  absl::Time deadline;
  const std::atomic<bool>* cancelled = nullptr;
  int64_t scanned = 0;
  StopReason stop = StopReason::kNone;
  absl::Status store_error;
};

struct EventsVtab {
  sqlite3_vtab base;  // first: SQLite casts
  SearchState* state;
  const TableDef* def;
  absl::flat_hash_map<std::string, int> column_index;
  // The same by lower-case name: a field written in another case (as in
  // panther-analysis' test events, "eventtype") is its column too, as the
  // rules' case-insensitive event finds it.
  absl::flat_hash_map<std::string, int> lower_column_index;
};

struct EventsCursor {
  sqlite3_vtab_cursor base;  // first: SQLite casts
  EventsVtab* table = nullptr;
  // The time range's events (engine/event_store.h), a chunk at a time.
  std::unique_ptr<engine::StoredEventScanner> scanner;
  std::vector<engine::StoredEventScanner::Event> events;
  size_t pos = 0;
  bool exhausted = true;  // no more chunks
  int64_t rowid = 0;
  // The current row, parsed on first use.
  bool parsed = false;
  simdjson::dom::parser parser;
  std::vector<simdjson::dom::element> fields;
  std::vector<bool> present;
  std::vector<bool> exact;  // present[i] came from a field named exactly so
};

void SetVtabError(sqlite3_vtab* vtab, const std::string& message) {
  sqlite3_free(vtab->zErrMsg);
  vtab->zErrMsg = sqlite3_mprintf("%s", message.c_str());
}

int ConnectTable(sqlite3* db, void* aux, int argc, const char* const* argv, sqlite3_vtab** out,
                 char** err) {
  // argv[3]: the index of the table definition.
  auto* defs = static_cast<std::pair<SearchState*, std::vector<TableDef>*>*>(aux);
  if (argc < 4) {
    *err = sqlite3_mprintf("events table without a log type");
    return SQLITE_ERROR;
  }
  int index = 0;
  if (!absl::SimpleAtoi(argv[3], &index) || index < 0 ||
      index >= static_cast<int>(defs->second->size())) {
    *err = sqlite3_mprintf("bad events table index");
    return SQLITE_ERROR;
  }
  const TableDef* def = &(*defs->second)[index];
  std::vector<std::string> decl;
  for (const std::string& c : def->columns) decl.push_back(absl::StrCat("\"", c, "\""));
  const std::string create = absl::StrCat("CREATE TABLE x(", absl::StrJoin(decl, ", "), ")");
  int rc = sqlite3_declare_vtab(db, create.c_str());
  if (rc != SQLITE_OK) return rc;
  auto* vtab = new EventsVtab();
  std::memset(&vtab->base, 0, sizeof(vtab->base));
  vtab->state = defs->first;
  vtab->def = def;
  for (size_t i = 0; i < def->columns.size(); ++i) {
    vtab->column_index[def->columns[i]] = static_cast<int>(i);
    vtab->lower_column_index.try_emplace(absl::AsciiStrToLower(def->columns[i]),
                                         static_cast<int>(i));
  }
  *out = &vtab->base;
  return SQLITE_OK;
}

int DisconnectTable(sqlite3_vtab* vtab) {
  delete reinterpret_cast<EventsVtab*>(vtab);
  return SQLITE_OK;
}

// idxStr: one character per argv entry: '=', '>', 'g' (>=), '<', 'l' (<=).
int BestIndex(sqlite3_vtab* vtab, sqlite3_index_info* info) {
  const auto* table = reinterpret_cast<EventsVtab*>(vtab);
  std::string ops;
  bool lower = false;
  bool upper = false;
  for (int i = 0; i < info->nConstraint; ++i) {
    const auto& c = info->aConstraint[i];
    if (!c.usable || c.iColumn != table->def->time_column) continue;
    char op = 0;
    switch (c.op) {
      case SQLITE_INDEX_CONSTRAINT_EQ:
        op = '=';
        lower = upper = true;
        break;
      case SQLITE_INDEX_CONSTRAINT_GT:
        op = '>';
        lower = true;
        break;
      case SQLITE_INDEX_CONSTRAINT_GE:
        op = 'g';
        lower = true;
        break;
      case SQLITE_INDEX_CONSTRAINT_LT:
        op = '<';
        upper = true;
        break;
      case SQLITE_INDEX_CONSTRAINT_LE:
        op = 'l';
        upper = true;
        break;
      default:
        continue;
    }
    ops.push_back(op);
    info->aConstraintUsage[i].argvIndex = static_cast<int>(ops.size());
    info->aConstraintUsage[i].omit = 0;  // SQLite checks it too: the range is a superset
  }
  info->idxNum = static_cast<int>(ops.size());
  if (!ops.empty()) {
    info->idxStr = sqlite3_mprintf("%s", ops.c_str());
    info->needToFreeIdxStr = 1;
  }
  double cost = 1e6;
  if (lower) cost /= 10;
  if (upper) cost /= 10;
  info->estimatedCost = cost;
  info->estimatedRows = static_cast<sqlite3_int64>(cost);
  return SQLITE_OK;
}

int OpenCursor(sqlite3_vtab* vtab, sqlite3_vtab_cursor** out) {
  auto* cursor = new EventsCursor();
  std::memset(&cursor->base, 0, sizeof(cursor->base));
  cursor->table = reinterpret_cast<EventsVtab*>(vtab);
  *out = &cursor->base;
  return SQLITE_OK;
}

int CloseCursor(sqlite3_vtab_cursor* cur) {
  delete reinterpret_cast<EventsCursor*>(cur);
  return SQLITE_OK;
}

// Reads the next chunk of events into the cursor.
int LoadChunk(EventsCursor* c) {
  c->events.clear();
  c->pos = 0;
  if (c->exhausted) return SQLITE_OK;
  SearchState* state = c->table->state;
  absl::Status s = c->scanner->Next(kScanChunk, &c->events);
  if (!s.ok()) {
    state->store_error = s;
    SetVtabError(&c->table->base, std::string(s.message()));
    return SQLITE_ERROR;
  }
  state->scanned += static_cast<int64_t>(c->events.size());
  if (c->events.empty()) c->exhausted = true;
  return SQLITE_OK;
}

absl::Time FloorMicros(absl::Time t) { return absl::FromUnixMicros(absl::ToUnixMicros(t)); }
absl::Time CeilMicros(absl::Time t) {
  const absl::Time f = FloorMicros(t);
  return f == t ? f : f + absl::Microseconds(1);
}

int Filter(sqlite3_vtab_cursor* cur, int idx_num, const char* idx_str, int argc,
           sqlite3_value** argv) {
  auto* c = reinterpret_cast<EventsCursor*>(cur);
  SearchState* state = c->table->state;
  absl::Time since = state->since;
  absl::Time until = state->until;
  for (int i = 0; i < argc && i < idx_num && idx_str != nullptr; ++i) {
    if (sqlite3_value_type(argv[i]) != SQLITE_TEXT) continue;
    const char* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[i]));
    std::optional<absl::Time> t =
        ParseStoredEventTime(absl::string_view(text, sqlite3_value_bytes(argv[i])));
    if (!t.has_value()) continue;
    switch (idx_str[i]) {
      case '=':
        since = std::max(since, FloorMicros(*t));
        until = std::min(until, FloorMicros(*t) + absl::Microseconds(1));
        break;
      case '>':
      case 'g':
        since = std::max(since, FloorMicros(*t));
        break;
      case '<':
        until = std::min(until, CeilMicros(*t));
        break;
      case 'l':
        until = std::min(until, FloorMicros(*t) + absl::Microseconds(1));
        break;
      default:
        break;
    }
  }
  c->rowid = 0;
  c->parsed = false;
  c->events.clear();
  c->pos = 0;
  if (since >= until) {
    c->exhausted = true;
    return SQLITE_OK;
  }
  c->exhausted = false;
  c->scanner = std::make_unique<engine::StoredEventScanner>(*state->store, c->table->def->log_type,
                                                            since, until);
  return LoadChunk(c);
}

int Next(sqlite3_vtab_cursor* cur) {
  auto* c = reinterpret_cast<EventsCursor*>(cur);
  ++c->pos;
  ++c->rowid;
  c->parsed = false;
  if (c->pos >= c->events.size()) return LoadChunk(c);
  return SQLITE_OK;
}

int Eof(sqlite3_vtab_cursor* cur) {
  auto* c = reinterpret_cast<EventsCursor*>(cur);
  return c->pos >= c->events.size() ? 1 : 0;
}

int EnsureParsed(EventsCursor* c) {
  if (c->parsed) return SQLITE_OK;
  const size_t n = c->table->def->columns.size();
  c->fields.assign(n, simdjson::dom::element());
  c->present.assign(n, false);
  const std::string& json = c->events[c->pos].json;
  simdjson::dom::element doc;
  simdjson::dom::object object;
  if (c->parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(object) != simdjson::SUCCESS) {
    SetVtabError(&c->table->base, "a stored event is not a JSON object");
    return SQLITE_ERROR;
  }
  // A field named exactly as its column wins over one in another case.
  c->exact.assign(n, false);
  for (simdjson::dom::key_value_pair field : object) {
    const absl::string_view key(field.key.data(), field.key.size());
    auto it = c->table->column_index.find(key);
    bool exact = true;
    if (it == c->table->column_index.end()) {
      it = c->table->lower_column_index.find(absl::AsciiStrToLower(key));
      if (it == c->table->lower_column_index.end()) continue;
      exact = false;
    }
    if (!exact && c->exact[it->second]) continue;
    c->fields[it->second] = field.value;
    c->present[it->second] = true;
    c->exact[it->second] = exact;
  }
  c->parsed = true;
  return SQLITE_OK;
}

int Column(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int column) {
  auto* c = reinterpret_cast<EventsCursor*>(cur);
  if (int rc = EnsureParsed(c); rc != SQLITE_OK) return rc;
  if (column < 0 || column >= static_cast<int>(c->fields.size()) || !c->present[column]) {
    sqlite3_result_null(ctx);
    return SQLITE_OK;
  }
  simdjson::dom::element v = c->fields[column];
  switch (v.type()) {
    case simdjson::dom::element_type::STRING: {
      std::string_view s = v.get_string().value_unsafe();
      sqlite3_result_text64(ctx, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      break;
    }
    case simdjson::dom::element_type::INT64:
      sqlite3_result_int64(ctx, v.get_int64().value_unsafe());
      break;
    case simdjson::dom::element_type::UINT64:
      sqlite3_result_double(ctx, static_cast<double>(v.get_uint64().value_unsafe()));
      break;
    case simdjson::dom::element_type::DOUBLE:
      sqlite3_result_double(ctx, v.get_double().value_unsafe());
      break;
    case simdjson::dom::element_type::BOOL:
      sqlite3_result_int(ctx, v.get_bool().value_unsafe() ? 1 : 0);
      break;
    case simdjson::dom::element_type::NULL_VALUE:
      sqlite3_result_null(ctx);
      break;
    default: {  // object or array: its JSON text
      std::string text = simdjson::minify(v);
      sqlite3_result_text64(ctx, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      break;
    }
  }
  return SQLITE_OK;
}

int Rowid(sqlite3_vtab_cursor* cur, sqlite3_int64* rowid) {
  *rowid = reinterpret_cast<EventsCursor*>(cur)->rowid;
  return SQLITE_OK;
}

sqlite3_module MakeModule() {
  sqlite3_module m;
  std::memset(&m, 0, sizeof(m));
  m.iVersion = 1;
  m.xCreate = ConnectTable;
  m.xConnect = ConnectTable;
  m.xBestIndex = BestIndex;
  m.xDisconnect = DisconnectTable;
  m.xDestroy = DisconnectTable;
  m.xOpen = OpenCursor;
  m.xClose = CloseCursor;
  m.xFilter = Filter;
  m.xNext = Next;
  m.xEof = Eof;
  m.xColumn = Column;
  m.xRowid = Rowid;
  return m;
}

const sqlite3_module kModule = MakeModule();

// What the authorizer refused, for the error message.
struct AuthorizerState {
  std::string refused;
  bool schema_change = false;  // a write of the schema table (CREATE, DROP)
};

const char* ActionName(int action) {
  switch (action) {
    case SQLITE_ATTACH:
      return "ATTACH";
    case SQLITE_DETACH:
      return "DETACH";
    case SQLITE_PRAGMA:
      return "PRAGMA";
    case SQLITE_INSERT:
      return "INSERT";
    case SQLITE_UPDATE:
      return "UPDATE";
    case SQLITE_DELETE:
      return "DELETE";
    case SQLITE_TRANSACTION:
      return "a transaction";
    case SQLITE_SAVEPOINT:
      return "SAVEPOINT";
    case SQLITE_ANALYZE:
      return "ANALYZE";
    case SQLITE_REINDEX:
      return "REINDEX";
    case SQLITE_ALTER_TABLE:
      return "ALTER TABLE";
    default:
      break;
  }
  if ((action >= SQLITE_CREATE_INDEX && action <= SQLITE_CREATE_VIEW) ||
      action == SQLITE_CREATE_VTABLE) {
    return "CREATE";
  }
  if ((action >= SQLITE_DROP_INDEX && action <= SQLITE_DROP_VIEW) || action == SQLITE_DROP_VTABLE) {
    return "DROP";
  }
  return "this statement";
}

// For SQLITE_FUNCTION, SQLite passes the function's name as the second
// argument.
int Authorize(void* user, int action, const char* a1, const char* a2, const char*, const char*) {
  auto* state = static_cast<AuthorizerState*>(user);
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    case SQLITE_FUNCTION:
      if (a2 != nullptr && absl::EqualsIgnoreCase(a2, "load_extension")) {
        state->refused = "load_extension()";
        return SQLITE_DENY;
      }
      return SQLITE_OK;
    default:
      if (!state->refused.empty()) return SQLITE_DENY;
      // CREATE and DROP first write the schema table: name the statement
      // (its first keyword), not that write.
      if ((action == SQLITE_INSERT || action == SQLITE_UPDATE || action == SQLITE_DELETE) &&
          a1 != nullptr && absl::StartsWithIgnoreCase(a1, "sqlite_")) {
        state->schema_change = true;
      }
      state->refused = ActionName(action);
      return SQLITE_DENY;
  }
}

int Progress(void* user) {
  auto* state = static_cast<SearchState*>(user);
  if (state->cancelled != nullptr && state->cancelled->load()) {
    state->stop = StopReason::kCancelled;
    return 1;
  }
  if (absl::Now() >= state->deadline) {
    state->stop = StopReason::kTimeout;
    return 1;
  }
  return 0;
}

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

std::string SqlQuote(absl::string_view text) {
  std::string out = "'";
  for (char ch : text) {
    if (ch == '\'') out.push_back('\'');
    out.push_back(ch);
  }
  out.push_back('\'');
  return out;
}

// Digits of `s` at [pos, pos + n) as a number; false when not all digits.
bool Digits(absl::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

std::optional<absl::Duration> ParseAge(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  size_t i = 0;
  while (i < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) ++i;
  int64_t n = 0;
  if (i == 0 || i > 9 || !absl::SimpleAtoi(text.substr(0, i), &n) || n <= 0) return std::nullopt;
  const std::string unit = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text.substr(i)));
  absl::Duration d;
  if (unit == "s" || unit == "sec" || unit == "secs" || unit == "second" || unit == "seconds") {
    d = absl::Seconds(1);
  } else if (unit == "m" || unit == "min" || unit == "mins" || unit == "minute" ||
             unit == "minutes") {
    d = absl::Minutes(1);
  } else if (unit == "h" || unit == "hr" || unit == "hrs" || unit == "hour" || unit == "hours") {
    d = absl::Hours(1);
  } else if (unit == "d" || unit == "day" || unit == "days") {
    d = absl::Hours(24);
  } else if (unit == "w" || unit == "week" || unit == "weeks") {
    d = absl::Hours(24 * 7);
  } else {
    return std::nullopt;
  }
  return d * n;
}

std::optional<absl::Time> ParseHelperTime(absl::string_view text) {
  if (std::optional<absl::Time> t = ParseStoredEventTime(text)) return t;
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, std::string(text), &t, &err)) return t;
  return std::nullopt;
}

bool IsWordChar(char ch) {
  const auto u = static_cast<unsigned char>(ch);
  return absl::ascii_isalnum(u) || ch == '_' || ch == '$' || u >= 0x80;
}

// Skips whitespace and comments from `i`.
size_t SkipSpace(absl::string_view s, size_t i) {
  while (i < s.size()) {
    if (absl::ascii_isspace(static_cast<unsigned char>(s[i]))) {
      ++i;
    } else if (s.substr(i, 2) == "--") {
      const size_t nl = s.find('\n', i);
      i = nl == absl::string_view::npos ? s.size() : nl + 1;
    } else if (s.substr(i, 2) == "/*") {
      const size_t end = s.find("*/", i + 2);
      i = end == absl::string_view::npos ? s.size() : end + 2;
    } else {
      break;
    }
  }
  return i;
}

// Reads a string literal at `i`; npos when there is none.
size_t ReadLiteral(absl::string_view s, size_t i, std::string* value) {
  if (i >= s.size() || s[i] != '\'') return absl::string_view::npos;
  value->clear();
  for (size_t j = i + 1; j < s.size(); ++j) {
    if (s[j] == '\'') {
      if (j + 1 < s.size() && s[j + 1] == '\'') {
        value->push_back('\'');
        ++j;
        continue;
      }
      return j + 1;
    }
    value->push_back(s[j]);
  }
  return absl::string_view::npos;
}

// Parses "(" literal {"," literal} ")" at `i`; returns the position after it.
absl::StatusOr<size_t> ReadLiteralArgs(absl::string_view s, size_t i, absl::string_view name,
                                       size_t count, std::vector<std::string>* args) {
  const std::string usage =
      count == 1 ? "p_occurs_since takes one string literal, e.g. p_occurs_since('6 hours')"
                 : "p_occurs_between takes two string literals, e.g. "
                   "p_occurs_between('2026-03-01T10:00:00Z', '2026-03-01T11:00:00Z')";
  i = SkipSpace(s, i);
  if (i >= s.size() || s[i] != '(') return absl::InvalidArgumentError(usage);
  for (size_t k = 0; k < count; ++k) {
    i = SkipSpace(s, i + 1);
    std::string value;
    const size_t end = ReadLiteral(s, i, &value);
    if (end == absl::string_view::npos) return absl::InvalidArgumentError(usage);
    args->push_back(std::move(value));
    i = SkipSpace(s, end);
    const char want = k + 1 == count ? ')' : ',';
    if (i >= s.size() || s[i] != want) return absl::InvalidArgumentError(usage);
  }
  (void)name;
  return i + 1;
}

}  // namespace

std::string SearchTableName(absl::string_view log_type) {
  std::string name;
  for (char ch : log_type) {
    const auto u = static_cast<unsigned char>(ch);
    name.push_back(absl::ascii_isalnum(u) || ch == '_' ? absl::ascii_tolower(u) : '_');
  }
  return name;
}

std::optional<absl::Time> ParseStoredEventTime(absl::string_view s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!Digits(s, 0, 4, &y) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, &mo) ||
      s[7] != '-' || !Digits(s, 8, 2, &d)) {
    return std::nullopt;
  }
  int64_t nanos = 0;
  if (s.size() > 10) {
    if (s.size() < 16 || s[10] != ' ' || !Digits(s, 11, 2, &h) || s[13] != ':' ||
        !Digits(s, 14, 2, &mi)) {
      return std::nullopt;
    }
    if (s.size() > 16) {
      if (s.size() < 19 || s[16] != ':' || !Digits(s, 17, 2, &sec)) return std::nullopt;
      if (s.size() > 19) {
        const size_t digits = s.size() - 20;
        if (s[19] != '.' || digits < 1 || digits > 9) return std::nullopt;
        int part = 0;
        for (size_t i = 20; i < s.size(); ++i) {
          if (!Digits(s, i, 1, &part)) return std::nullopt;
          nanos = nanos * 10 + part;
        }
        for (size_t k = digits; k < 9; ++k) nanos *= 10;
      }
    }
  }
  const absl::CivilSecond civil(y, mo, d, h, mi, sec);
  // Reject normalised (out-of-range) fields such as month 13.
  if (civil.year() != y || civil.month() != mo || civil.day() != d || civil.hour() != h ||
      civil.minute() != mi || civil.second() != sec) {
    return std::nullopt;
  }
  return absl::FromCivil(civil, absl::UTCTimeZone()) + absl::Nanoseconds(nanos);
}

absl::StatusOr<std::string> RewriteHelpers(absl::string_view sql, absl::Time now,
                                           absl::Time* earliest) {
  if (earliest != nullptr) *earliest = absl::InfiniteFuture();
  auto asks_for = [earliest](absl::Time t) {
    if (earliest != nullptr) *earliest = std::min(*earliest, t);
  };
  std::string out;
  out.reserve(sql.size());
  size_t i = 0;
  while (i < sql.size()) {
    const char ch = sql[i];
    if (ch == '\'' || ch == '"' || ch == '`' || ch == '[') {
      const char close = ch == '[' ? ']' : ch;
      size_t j = i + 1;
      while (j < sql.size()) {
        if (sql[j] == close) {
          if (close != ']' && j + 1 < sql.size() && sql[j + 1] == close) {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      const size_t end = std::min(sql.size(), j + 1);
      absl::StrAppend(&out, sql.substr(i, end - i));
      i = end;
    } else if (sql.substr(i, 2) == "--" || sql.substr(i, 2) == "/*") {
      const size_t end = SkipSpace(sql, i);
      absl::StrAppend(&out, sql.substr(i, end - i));
      i = end;
    } else if (IsWordChar(ch)) {
      size_t j = i;
      while (j < sql.size() && IsWordChar(sql[j])) ++j;
      const std::string word = absl::AsciiStrToLower(sql.substr(i, j - i));
      const bool preceded_by_dot = i > 0 && sql[i - 1] == '.';
      if (!preceded_by_dot && word == "p_occurs_since") {
        std::vector<std::string> args;
        absl::StatusOr<size_t> end = ReadLiteralArgs(sql, j, word, 1, &args);
        if (!end.ok()) return end.status();
        std::optional<absl::Duration> age = ParseAge(args[0]);
        if (!age.has_value()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "p_occurs_since('", args[0],
              "'): not an age; use a number and a unit: seconds, minutes, hours, days or weeks "
              "(e.g. '6 hours', '1 day', '30 minutes')"));
        }
        asks_for(now - *age);
        absl::StrAppend(&out, "(p_event_time >= ", SqlQuote(engine::FormatPantherTime(now - *age)),
                        ")");
        i = *end;
      } else if (!preceded_by_dot && word == "p_occurs_between") {
        std::vector<std::string> args;
        absl::StatusOr<size_t> end = ReadLiteralArgs(sql, j, word, 2, &args);
        if (!end.ok()) return end.status();
        std::optional<absl::Time> from = ParseHelperTime(args[0]);
        std::optional<absl::Time> to = ParseHelperTime(args[1]);
        for (size_t k = 0; k < 2; ++k) {
          if (!(k == 0 ? from : to).has_value()) {
            return absl::InvalidArgumentError(absl::StrCat(
                "p_occurs_between: '", args[k],
                "' is not a time; use RFC 3339 (2026-03-01T10:00:00Z) or 2026-03-01 10:00:00"));
          }
        }
        asks_for(*from);
        absl::StrAppend(&out, "(p_event_time >= ", SqlQuote(engine::FormatPantherTime(*from)),
                        " AND p_event_time < ", SqlQuote(engine::FormatPantherTime(*to)), ")");
        i = *end;
      } else {
        absl::StrAppend(&out, sql.substr(i, j - i));
        i = j;
      }
    } else {
      out.push_back(ch);
      ++i;
    }
  }
  return out;
}

absl::Status ValidateSearchRequest(const v1::SearchEventsRequest& request) {
  auto invalid = [](absl::string_view field, absl::string_view problem) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
  };
  if (request.sql().empty()) return invalid("sql", "is required");
  if (request.limit() < 0 || request.limit() > kSearchMaxLimit) {
    return invalid("limit", absl::StrCat("must be between 0 (the default, ", kSearchDefaultLimit,
                                         ") and ", kSearchMaxLimit));
  }
  if (request.timeout_seconds() < 0 || request.timeout_seconds() > kSearchMaxTimeoutSeconds) {
    return invalid("timeout_seconds",
                   absl::StrCat("must be between 0 (the default, ", kSearchDefaultTimeoutSeconds,
                                ") and ", kSearchMaxTimeoutSeconds));
  }
  const std::pair<absl::string_view, const google::protobuf::Timestamp*> times[] = {
      {"since", &request.since()}, {"until", &request.until()}};
  for (const auto& [field, t] : times) {
    if (t->seconds() < TimeUtil::kTimestampMinSeconds ||
        t->seconds() > TimeUtil::kTimestampMaxSeconds || t->nanos() < 0 || t->nanos() > 999999999) {
      return invalid(field, "is not a valid time");
    }
  }
  if (request.has_since() && request.has_until() &&
      TimeUtil::TimestampToMicroseconds(request.since()) >
          TimeUtil::TimestampToMicroseconds(request.until())) {
    return invalid("since", "is after until");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SearchSummary> RunEventSearch(const store::Store& store,
                                                 const v1::SearchEventsRequest& request,
                                                 absl::Time now, const std::atomic<bool>& cancelled,
                                                 const SearchCallbacks& callbacks) {
  const absl::Time started = absl::Now();
  const int64_t limit = request.limit() > 0 ? request.limit() : kSearchDefaultLimit;
  const absl::Duration timeout = absl::Seconds(
      request.timeout_seconds() > 0 ? request.timeout_seconds() : kSearchDefaultTimeoutSeconds);

  SearchState state;
  state.store = &store;
  state.cancelled = &cancelled;
  state.deadline = started + timeout;
  state.until = request.has_until()
                    ? absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(request.until()))
                    : FloorMicros(now);
  absl::Time helpers_earliest;
  absl::StatusOr<std::string> sql = RewriteHelpers(request.sql(), now, &helpers_earliest);
  if (!sql.ok()) return sql.status();
  // Without `since`, the default range, widened to where the SQL's time
  // helpers start: p_occurs_since('30 days') reads 30 days, as in Panther.
  state.since = request.has_since()
                    ? absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(request.since()))
                    : std::min(state.until - kSearchDefaultRange, FloorMicros(helpers_earliest));
  if (state.since > state.until) {
    return absl::InvalidArgumentError("since is after until");
  }

  // The tables: every known log type and every stored one.
  std::vector<std::string> log_types = engine::SupportedLogTypes();
  absl::StatusOr<std::vector<std::string>> stored = engine::StoredLogTypes(store);
  if (!stored.ok()) return stored.status();
  for (const std::string& t : *stored) {
    if (std::find(log_types.begin(), log_types.end(), t) == log_types.end()) log_types.push_back(t);
  }
  std::vector<TableDef> tables;
  for (const std::string& t : log_types) {
    TableDef def = MakeTable(t);
    bool clash = false;
    for (const TableDef& other : tables) clash = clash || other.name == def.name;
    if (!clash) tables.push_back(std::move(def));
  }

  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string message = raw != nullptr ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close_v2(raw);
    return absl::InternalError(absl::StrCat("cannot open SQLite: ", message));
  }
  std::unique_ptr<sqlite3, DbCloser> db(raw);
  sqlite3_db_config(db.get(), SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  sqlite3_db_config(db.get(), SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db.get(), SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_limit(db.get(), SQLITE_LIMIT_SQL_LENGTH, kSearchMaxSqlBytes);
  sqlite3_limit(db.get(), SQLITE_LIMIT_LENGTH, kSearchMaxValueBytes);
  sqlite3_limit(db.get(), SQLITE_LIMIT_ATTACHED, 0);

  std::pair<SearchState*, std::vector<TableDef>*> aux(&state, &tables);
  if (sqlite3_create_module_v2(db.get(), "pantherd_events", &kModule, &aux, nullptr) != SQLITE_OK) {
    return absl::InternalError(absl::StrCat("SQLite: ", sqlite3_errmsg(db.get())));
  }
  for (size_t i = 0; i < tables.size(); ++i) {
    const std::string create = absl::StrCat("CREATE VIRTUAL TABLE \"", tables[i].name,
                                            "\" USING pantherd_events(", i, ")");
    if (sqlite3_exec(db.get(), create.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      return absl::InternalError(absl::StrCat("SQLite: ", sqlite3_errmsg(db.get())));
    }
  }

  // The JSON table-valued functions connect on first use, which the
  // authorizer below would refuse (their constructor declares a table):
  // connect them now.
  if (sqlite3_exec(db.get(), "SELECT 1 FROM json_each('[]'), json_tree('[]')", nullptr, nullptr,
                   nullptr) != SQLITE_OK) {
    return absl::InternalError(absl::StrCat("SQLite: ", sqlite3_errmsg(db.get())));
  }

  // From here on, the sandbox.
  AuthorizerState auth;
  sqlite3_set_authorizer(db.get(), Authorize, &auth);
  sqlite3_progress_handler(db.get(), kProgressInstructions, Progress, &state);

  auto sql_error = [&](absl::string_view what) {
    std::string message = sqlite3_errmsg(db.get());
    if (!auth.refused.empty()) {
      std::string what = auth.refused;
      if (auth.schema_change) {
        const size_t start = SkipSpace(*sql, 0);
        size_t end = start;
        while (end < sql->size() && IsWordChar((*sql)[end])) ++end;
        what = absl::AsciiStrToUpper(absl::string_view(*sql).substr(start, end - start));
      }
      message = absl::StrCat(what, " is not allowed: a search is one read-only SELECT statement (",
                             message, ")");
    }
    const int offset = sqlite3_error_offset(db.get());
    if (offset >= 0) absl::StrAppend(&message, " at offset ", offset);
    return absl::InvalidArgumentError(absl::StrCat(what, message));
  };

  if (static_cast<int64_t>(sql->size()) > kSearchMaxSqlBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("sql is longer than ", kSearchMaxSqlBytes, " bytes"));
  }
  sqlite3_stmt* raw_stmt = nullptr;
  const char* tail = nullptr;
  if (sqlite3_prepare_v3(db.get(), sql->data(), static_cast<int>(sql->size()), 0, &raw_stmt,
                         &tail) != SQLITE_OK) {
    sqlite3_finalize(raw_stmt);
    return sql_error("");
  }
  std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt(raw_stmt);
  if (stmt == nullptr) return absl::InvalidArgumentError("sql has no statement");
  if (tail != nullptr) {
    const size_t tail_offset = static_cast<size_t>(tail - sql->data());
    const size_t rest = SkipSpace(*sql, tail_offset);
    // A lone ';' (or several) at the end is fine.
    size_t k = rest;
    while (k < sql->size() && (*sql)[k] == ';') k = SkipSpace(*sql, k + 1);
    if (k < sql->size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sql must be exactly one statement; another one starts at offset ", k));
    }
  }
  if (sqlite3_stmt_readonly(stmt.get()) == 0) {
    return absl::InvalidArgumentError(
        "only read-only SELECT statements are allowed: searches cannot change anything");
  }

  v1::SearchHeader header;
  const int ncols = sqlite3_column_count(stmt.get());
  for (int i = 0; i < ncols; ++i) {
    const char* name = sqlite3_column_name(stmt.get(), i);
    header.add_columns(name != nullptr ? name : "");
  }
  *header.mutable_since() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(state.since));
  *header.mutable_until() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(state.until));
  if (!callbacks.header(std::move(header)))
    return absl::CancelledError("the client stopped reading");

  v1::SearchSummary summary;
  int64_t rows = 0;
  while (true) {
    const int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      if (!state.store_error.ok()) return state.store_error;
      if (state.stop == StopReason::kTimeout) {
        return absl::DeadlineExceededError(absl::StrCat("the query ran longer than its timeout of ",
                                                        absl::ToInt64Seconds(timeout),
                                                        " s (timeout_seconds) and was stopped"));
      }
      if (state.stop == StopReason::kCancelled)
        return absl::CancelledError("the search was cancelled");
      return sql_error("");
    }
    if (rows == limit) {
      summary.set_truncated(true);
      break;
    }
    v1::SearchRow row;
    for (int i = 0; i < ncols; ++i) {
      v1::SearchValue* v = row.add_values();
      switch (sqlite3_column_type(stmt.get(), i)) {
        case SQLITE_INTEGER:
          v->set_int_value(sqlite3_column_int64(stmt.get(), i));
          break;
        case SQLITE_FLOAT:
          v->set_double_value(sqlite3_column_double(stmt.get(), i));
          break;
        case SQLITE_TEXT: {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), i));
          const auto size = static_cast<size_t>(sqlite3_column_bytes(stmt.get(), i));
          v->set_text_value(text != nullptr ? std::string(text, size) : std::string());
          break;
        }
        case SQLITE_BLOB: {
          const auto* blob = static_cast<const char*>(sqlite3_column_blob(stmt.get(), i));
          const auto size = static_cast<size_t>(sqlite3_column_bytes(stmt.get(), i));
          v->set_blob_value(blob != nullptr ? std::string(blob, size) : std::string());
          break;
        }
        default:
          v->set_null_value(true);
          break;
      }
    }
    ++rows;
    if (!callbacks.row(std::move(row))) return absl::CancelledError("the client stopped reading");
  }
  summary.set_rows(rows);
  summary.set_events_scanned(state.scanned);
  summary.set_elapsed_ms(absl::ToInt64Milliseconds(absl::Now() - started));
  return summary;
}

}  // namespace pantherd::server
