// The table of destination kinds and what the kinds share: validation of a
// configuration against a kind's fields, the webhook payload, names, times,
// HMAC signatures and the JSON writer of destination_util.h.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "engine/yaml_json.h"
#include "server/destination_kind.h"
#include "server/destination_util.h"

namespace pantherd::server {

extern const DestinationKind kWebhookDestination;
extern const DestinationKind kSlackDestination;
extern const DestinationKind kPagerDutyDestination;
extern const DestinationKind kTeamsDestination;
extern const DestinationKind kJiraDestination;

namespace destination_internal {
namespace {

// A strict RFC 8259 reader that only checks: Value() consumes one value at
// pos_ and says whether it was well formed (nested at most kMaxDepth deep).
class JsonChecker {
 public:
  explicit JsonChecker(absl::string_view text) : s_(text) {}

  // True if the whole text is one JSON object (surrounding whitespace
  // allowed).
  bool IsObject() {
    SkipSpace();
    if (pos_ >= s_.size() || s_[pos_] != '{') return false;
    if (!Value(0)) return false;
    SkipSpace();
    return pos_ == s_.size();
  }

 private:
  static constexpr int kMaxDepth = 64;

  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Literal(absl::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  bool Digits() {
    const size_t start = pos_;
    while (pos_ < s_.size() && absl::ascii_isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    return pos_ > start;
  }
  bool Number() {
    Eat('-');
    if (Eat('0')) {
      // No leading zeros.
    } else if (!Digits()) {
      return false;
    }
    if (Eat('.') && !Digits()) return false;
    if (Eat('e') || Eat('E')) {
      if (!Eat('+')) Eat('-');
      if (!Digits()) return false;
    }
    return true;
  }
  // Four hex digits after "\u"; -1 when malformed.
  int Hex4() {
    if (pos_ + 4 > s_.size()) return -1;
    int v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_ + i];
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return -1;
      v = v * 16 + (absl::ascii_isdigit(static_cast<unsigned char>(c))
                        ? c - '0'
                        : absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10);
    }
    pos_ += 4;
    return v;
  }
  bool String() {
    if (!Eat('"')) return false;
    while (pos_ < s_.size()) {
      const unsigned char c = static_cast<unsigned char>(s_[pos_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') continue;
      if (pos_ >= s_.size()) return false;
      const char e = s_[pos_++];
      if (e == 'u') {
        const int v = Hex4();
        if (v < 0 || (v >= 0xDC00 && v <= 0xDFFF)) return false;
        if (v >= 0xD800 && v <= 0xDBFF) {  // A high surrogate needs its low half.
          if (!Literal("\\u")) return false;
          const int low = Hex4();
          if (low < 0xDC00 || low > 0xDFFF) return false;
        }
      } else if (absl::string_view("\"\\/bfnrt").find(e) == absl::string_view::npos) {
        return false;
      }
    }
    return false;
  }
  bool Value(int depth) {
    if (depth > kMaxDepth) return false;
    SkipSpace();
    if (pos_ >= s_.size()) return false;
    switch (s_[pos_]) {
      case '{':
        ++pos_;
        SkipSpace();
        if (Eat('}')) return true;
        do {
          SkipSpace();
          if (!String()) return false;
          SkipSpace();
          if (!Eat(':') || !Value(depth + 1)) return false;
          SkipSpace();
        } while (Eat(','));
        return Eat('}');
      case '[':
        ++pos_;
        SkipSpace();
        if (Eat(']')) return true;
        do {
          if (!Value(depth + 1)) return false;
          SkipSpace();
        } while (Eat(','));
        return Eat(']');
      case '"':
        return String();
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default:
        return Number();
    }
  }

  absl::string_view s_;
  size_t pos_ = 0;
};

std::string TimeOrDash(const google::protobuf::Timestamp& t) {
  std::string s = Rfc3339(t);
  return s.empty() ? "-" : s;
}

}  // namespace

std::string JsonString(absl::string_view s) {
  if (engine::IsValidUtf8(s)) return engine::JsonQuote(s);
  return engine::JsonQuote(engine::ReplaceInvalidUtf8(s));
}

std::string TruncateUtf8(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  constexpr absl::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026
  if (max_bytes < kEllipsis.size()) max_bytes = kEllipsis.size();
  size_t end = max_bytes - kEllipsis.size();
  // Back up to the start of a character (never inside a multi-byte one).
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return absl::StrCat(s.substr(0, end), kEllipsis);
}

std::string OneLine(absl::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\r' || c == '\n' || c == '\t') c = ' ';
  }
  return out;
}

bool IsJsonObject(absl::string_view json) {
  return engine::IsValidUtf8(json) && JsonChecker(json).IsObject();
}

void JsonObject::Key(absl::string_view key) {
  if (out_.size() > 1) out_.push_back(',');
  absl::StrAppend(&out_, JsonString(key), ":");
}

JsonObject& JsonObject::Add(absl::string_view key, absl::string_view value) {
  Key(key);
  out_ += JsonString(value);
  return *this;
}

JsonObject& JsonObject::Add(absl::string_view key, int64_t value) {
  Key(key);
  absl::StrAppend(&out_, value);
  return *this;
}

JsonObject& JsonObject::Add(absl::string_view key, bool value) {
  Key(key);
  out_ += value ? "true" : "false";
  return *this;
}

JsonObject& JsonObject::AddRaw(absl::string_view key, absl::string_view json) {
  Key(key);
  absl::StrAppend(&out_, json);
  return *this;
}

JsonObject& JsonObject::Add(absl::string_view key, const std::vector<std::string>& values) {
  JsonArray array;
  for (const std::string& v : values) array.Add(v);
  return AddRaw(key, array.Json());
}

void JsonArray::Comma() {
  if (out_.size() > 1) out_.push_back(',');
}

JsonArray& JsonArray::Add(absl::string_view value) {
  Comma();
  out_ += JsonString(value);
  return *this;
}

JsonArray& JsonArray::AddRaw(absl::string_view json) {
  Comma();
  absl::StrAppend(&out_, json);
  return *this;
}

std::string ContextJson(const v1::Alert& alert) {
  const absl::string_view context = absl::StripAsciiWhitespace(alert.alert_context_json());
  if (context.empty()) return "{}";
  if (IsJsonObject(context)) return std::string(context);
  return JsonString(context);
}

std::string RuleName(const AlertMessage& message) {
  return message.rule_name.empty() ? message.alert.rule_id() : message.rule_name;
}

std::string DisplayTitle(const AlertMessage& message) {
  return OneLine(absl::StrCat(message.action == DeliveryAction::kTest ? "[Test] " : "", "[",
                              SeverityName(message.alert.severity()), "] ", message.alert.title()));
}

std::string ActionName(DeliveryAction action) {
  switch (action) {
    case DeliveryAction::kResolve:
      return "resolve";
    case DeliveryAction::kTest:
      return "test";
    case DeliveryAction::kTrigger:
      break;
  }
  return "trigger";
}

std::vector<std::pair<std::string, std::string>> AlertFacts(const AlertMessage& message) {
  const v1::Alert& a = message.alert;
  std::vector<std::string> log_types(a.log_types().begin(), a.log_types().end());
  return {
      {"Rule", RuleName(message)},
      {"Severity", SeverityName(a.severity())},
      {"Events", absl::StrCat(a.event_count())},
      {"First event", TimeOrDash(a.first_event_time())},
      {"Last event", TimeOrDash(a.last_event_time())},
      {"Log types", log_types.empty() ? "-" : absl::StrJoin(log_types, ", ")},
  };
}

HttpHeaders JsonHeaders(const AlertMessage& message) {
  HttpHeaders headers = {{"Content-Type", "application/json"}};
  if (!message.idempotency_key.empty()) {
    headers.emplace_back("Idempotency-Key", message.idempotency_key);
  }
  return headers;
}

std::string Field(const DestinationConfig& config, const std::string& name, bool secret,
                  absl::string_view fallback) {
  const auto& map = secret ? config.secrets : config.settings;
  const auto it = map.find(name);
  if (it == map.end() || it->second.empty()) return std::string(fallback);
  return it->second;
}

}  // namespace destination_internal

namespace di = destination_internal;

const std::vector<const DestinationKind*>& DestinationKinds() {
  static const auto* const kinds = new std::vector<const DestinationKind*>{
      &kWebhookDestination, &kSlackDestination, &kPagerDutyDestination, &kTeamsDestination,
      &kJiraDestination};
  return *kinds;
}

const DestinationKind* FindDestinationKind(absl::string_view name) {
  for (const DestinationKind* kind : DestinationKinds()) {
    if (name == kind->name) return kind;
  }
  return nullptr;
}

namespace {

// A name from a request, safe to put in a message (escaped, bounded).
std::string QuoteName(absl::string_view name) {
  return absl::CHexEscape(di::TruncateUtf8(name, 64));
}

const DestinationFieldSpec* FindField(const DestinationKind& kind, absl::string_view name) {
  for (const DestinationFieldSpec& f : kind.fields) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

}  // namespace

absl::Status ValidateDestinationConfig(const DestinationKind& kind,
                                       const DestinationConfig& config) {
  for (const auto& [name, value] : config.settings) {
    const DestinationFieldSpec* f = FindField(kind, name);
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("settings.", QuoteName(name), ": kind ", kind.name, " has no such setting"));
    }
    if (f->secret) {
      return absl::InvalidArgumentError(absl::StrCat("settings.", f->name, ": is a secret of kind ",
                                                     kind.name, "; give it in secrets"));
    }
  }
  for (const auto& [name, value] : config.secrets) {
    const DestinationFieldSpec* f = FindField(kind, name);
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("secrets.", QuoteName(name), ": kind ", kind.name, " has no such secret"));
    }
    if (!f->secret) {
      return absl::InvalidArgumentError(absl::StrCat("secrets.", f->name, ": is a setting of kind ",
                                                     kind.name, "; give it in settings"));
    }
  }
  for (const DestinationFieldSpec& f : kind.fields) {
    if (!f.required) continue;
    const auto& map = f.secret ? config.secrets : config.settings;
    const auto it = map.find(f.name);
    if (it == map.end() || it->second.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(f.secret ? "secrets." : "settings.", f.name,
                                                     ": required by kind ", kind.name));
    }
  }
  if (!config.headers.empty() && !kind.accepts_headers) {
    return absl::InvalidArgumentError(
        absl::StrCat("headers: kind ", kind.name, " takes no custom headers"));
  }
  if (kind.validate != nullptr) return kind.validate(config);
  return absl::OkStatus();
}

std::string SeverityName(v1::Severity severity) {
  switch (severity) {
    case v1::SEVERITY_LOW:
      return "LOW";
    case v1::SEVERITY_MEDIUM:
      return "MEDIUM";
    case v1::SEVERITY_HIGH:
      return "HIGH";
    case v1::SEVERITY_CRITICAL:
      return "CRITICAL";
    default:
      return "INFO";
  }
}

std::string AlertTypeName(v1::AlertType type) {
  switch (type) {
    case v1::ALERT_TYPE_RULE_ERROR:
      return "RULE_ERROR";
    case v1::ALERT_TYPE_SIGNAL:
      return "SIGNAL";
    default:
      return "RULE";
  }
}

namespace {

std::string AlertStatusName(v1::AlertStatus status) {
  switch (status) {
    case v1::ALERT_STATUS_TRIAGED:
      return "TRIAGED";
    case v1::ALERT_STATUS_CLOSED:
      return "CLOSED";
    case v1::ALERT_STATUS_RESOLVED:
      return "RESOLVED";
    case v1::ALERT_STATUS_INVALID:
      return "INVALID";
    default:
      return "OPEN";
  }
}

}  // namespace

std::string Rfc3339(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "";
  const absl::Time time = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

std::string WebhookPayloadJson(const AlertMessage& message) {
  const v1::Alert& a = message.alert;
  std::vector<std::string> log_types(a.log_types().begin(), a.log_types().end());
  di::JsonObject o;
  o.Add("id", a.rule_id())
      .Add("createdAt", Rfc3339(a.created_time()))
      .Add("severity", SeverityName(a.severity()))
      .Add("type", AlertTypeName(a.type()))
      .Add("link", message.link)
      .Add("title", a.title())
      .Add("name", di::RuleName(message))
      .Add("alertId", a.id())
      .Add("description", a.description())
      .Add("runbook", a.runbook())
      .Add("reference", a.reference())
      .Add("tags", message.tags)
      .Add("version", absl::StrCat(a.rule_version()))
      .AddRaw("context", di::ContextJson(a))
      .Add("eventCount", static_cast<int64_t>(a.event_count()))
      .Add("firstEventTime", Rfc3339(a.first_event_time()))
      .Add("lastEventTime", Rfc3339(a.last_event_time()))
      .Add("logTypes", log_types)
      .Add("dedupString", a.dedup_string())
      .Add("status", AlertStatusName(a.status()))
      .Add("idempotencyKey", message.idempotency_key)
      .Add("action", di::ActionName(message.action));
  if (a.type() == v1::ALERT_TYPE_RULE_ERROR) {
    o.AddRaw(
        "error",
        di::JsonObject().Add("type", a.error().type()).Add("message", a.error().message()).Json());
  }
  return o.Json();
}

std::string HmacSha256Hex(absl::string_view key, absl::string_view body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest, &length);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), length));
}

absl::Status CheckHttpUrl(absl::string_view field, absl::string_view url, bool secret) {
  auto refuse = [&] {
    std::string message = absl::StrCat(field, ": must be an http(s) URL");
    if (!secret) {
      absl::StrAppend(&message, " (got \"", absl::CHexEscape(di::TruncateUtf8(url, 200)), "\")");
    }
    return absl::InvalidArgumentError(message);
  };
  absl::string_view rest;
  const std::string lower = absl::AsciiStrToLower(url.substr(0, 8));
  if (absl::StartsWith(lower, "https://")) {
    rest = url.substr(8);
  } else if (absl::StartsWith(lower, "http://")) {
    rest = url.substr(7);
  } else {
    return refuse();
  }
  for (const char c : url) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return refuse();
  }
  absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  const size_t at = authority.rfind('@');
  if (at != absl::string_view::npos) authority.remove_prefix(at + 1);
  // The host: up to a port, or a bracketed IPv6 literal.
  absl::string_view host = authority;
  if (absl::StartsWith(host, "[")) {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) return refuse();
    host = host.substr(1, close - 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  if (host.empty()) return refuse();
  return absl::OkStatus();
}

}  // namespace pantherd::server
