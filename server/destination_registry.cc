#include "server/destination_registry.h"

#include <openssl/rand.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/time_util.h"
#include "proto/base/status_macros.h"

namespace pantherd::server {
namespace {

using google::protobuf::util::TimeUtil;

constexpr size_t kMaxNameBytes = 64;
constexpr size_t kMaxFilterItemBytes = 200;
constexpr int kMaxFilterItems = 1000;
constexpr size_t kMaxValueBytes = 16 << 10;

std::string ConfigKey(absl::string_view id) { return absl::StrCat(kDestinationConfigPrefix, id); }

std::string NewId() {
  unsigned char bytes[8];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // RAND_bytes does not fail on a working system; fall back to the clock.
    const int64_t t = absl::ToUnixNanos(absl::Now());
    for (size_t i = 0; i < sizeof(bytes); ++i) bytes[i] = static_cast<unsigned char>(t >> (8 * i));
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

bool IsHexId(absl::string_view s) {
  return s.size() == 16 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

absl::Status ValidateName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("name: is required");
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("name: at most ", kMaxNameBytes, " bytes"));
  }
  if (absl::StripAsciiWhitespace(name) != name) {
    return absl::InvalidArgumentError("name: must not start or end with a space");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("name: must not contain control characters");
    }
  }
  if (absl::EqualsIgnoreCase(name, kSkipDestination)) {
    return absl::InvalidArgumentError(
        "name: SKIP is reserved (a rule returning it suppresses delivery)");
  }
  if (IsHexId(name)) {
    return absl::InvalidArgumentError("name: must not look like a destination id (16 hex digits)");
  }
  return absl::OkStatus();
}

// Settings and secrets maps: bounded sizes, no NUL.
absl::Status ValidateMap(absl::string_view field, const std::map<std::string, std::string>& m,
                         bool secret) {
  for (const auto& [key, value] : m) {
    if (key.empty() || key.size() > 64) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": names are 1 to 64 bytes"));
    }
    if (value.size() > kMaxValueBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".", key, ": at most ", kMaxValueBytes, " bytes"));
    }
    if (value.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".", key, secret ? ": contains a NUL byte" : ": contains a NUL byte"));
    }
  }
  return absl::OkStatus();
}

template <typename ProtoMap>
std::map<std::string, std::string> ToMap(const ProtoMap& m) {
  return std::map<std::string, std::string>(m.begin(), m.end());
}

// Merges `changes` into `target`: an empty value removes the entry.
template <typename ProtoMap, typename TargetMap>
void Merge(const ProtoMap& changes, TargetMap* target) {
  for (const auto& [key, value] : changes) {
    if (value.empty()) {
      target->erase(key);
    } else {
      (*target)[key] = value;
    }
  }
}

}  // namespace

absl::Status ValidateFilters(const v1::DestinationFilters& filters) {
  if (!v1::Severity_IsValid(filters.min_severity())) {
    return absl::InvalidArgumentError(
        absl::StrCat("filters.min_severity: ", filters.min_severity(), " is not a severity"));
  }
  for (int t : filters.alert_types()) {
    if (t == v1::ALERT_TYPE_SIGNAL) {
      return absl::InvalidArgumentError(
          "filters.alert_types: signals never notify; use ALERT_TYPE_RULE or "
          "ALERT_TYPE_RULE_ERROR");
    }
    if (t != v1::ALERT_TYPE_RULE && t != v1::ALERT_TYPE_RULE_ERROR) {
      return absl::InvalidArgumentError(absl::StrCat("filters.alert_types: ", t,
                                                     " is not ALERT_TYPE_RULE or "
                                                     "ALERT_TYPE_RULE_ERROR"));
    }
  }
  auto check = [](absl::string_view field, const auto& items) -> absl::Status {
    if (items.size() > kMaxFilterItems) {
      return absl::InvalidArgumentError(
          absl::StrCat("filters.", field, ": at most ", kMaxFilterItems, " entries"));
    }
    for (const std::string& item : items) {
      if (item.empty() || item.size() > kMaxFilterItemBytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("filters.", field, ": entries are 1 to ", kMaxFilterItemBytes, " bytes"));
      }
    }
    return absl::OkStatus();
  };
  PANTHERD_RETURN_IF_ERROR(check("log_types", filters.log_types()));
  PANTHERD_RETURN_IF_ERROR(check("rule_ids", filters.rule_ids()));
  return absl::OkStatus();
}

DestinationRegistry::DestinationRegistry(store::Store* store, base::Clock now)
    : store_(store), now_(std::move(now)) {}

absl::Status DestinationRegistry::Load() {
  std::map<std::string, internal::StoredDestination> loaded;
  absl::Status parse_error;
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(store::Family::kDestinations, kDestinationConfigPrefix,
                   [&](absl::string_view key, absl::string_view value) {
                     internal::StoredDestination d;
                     if (!d.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                       parse_error = absl::DataLossError(absl::StrCat(
                           "destination record ", absl::CEscape(key), " does not parse"));
                       return false;
                     }
                     loaded[d.destination().id()] = std::move(d);
                     return true;
                   }));
  PANTHERD_RETURN_IF_ERROR(parse_error);
  absl::MutexLock lock(&mu_);
  by_id_ = std::move(loaded);
  return absl::OkStatus();
}

v1::Destination DestinationRegistry::PublicView(const internal::StoredDestination& stored) {
  v1::Destination view = stored.destination();
  view.clear_secrets_set();
  view.clear_header_names();
  for (const auto& [name, value] : ToMap(stored.secrets())) view.add_secrets_set(name);
  for (const auto& [name, value] : ToMap(stored.headers())) view.add_header_names(name);
  return view;
}

DestinationConfig DestinationRegistry::ConfigOf(const internal::StoredDestination& stored) {
  DestinationConfig config;
  config.id = stored.destination().id();
  config.name = stored.destination().name();
  config.settings = ToMap(stored.destination().settings());
  config.secrets = ToMap(stored.secrets());
  config.headers = ToMap(stored.headers());
  return config;
}

absl::Status DestinationRegistry::Validate(const internal::StoredDestination& d,
                                           absl::string_view skip_id) const {
  const v1::Destination& dest = d.destination();
  PANTHERD_RETURN_IF_ERROR(ValidateName(dest.name()));
  const DestinationKind* kind = FindDestinationKind(dest.kind());
  if (kind == nullptr) {
    std::vector<std::string> names;
    for (const DestinationKind* k : DestinationKinds()) names.push_back(k->name);
    return absl::InvalidArgumentError(absl::StrCat(
        "kind: ", dest.kind().empty() ? "is required" : "unknown kind",
        dest.kind().empty() ? "" : absl::StrCat(" \"", absl::CEscape(dest.kind()), "\""),
        " (one of: ", absl::StrJoin(names, ", "), ")"));
  }
  PANTHERD_RETURN_IF_ERROR(ValidateMap("settings", ToMap(dest.settings()), false));
  PANTHERD_RETURN_IF_ERROR(ValidateMap("secrets", ToMap(d.secrets()), true));
  PANTHERD_RETURN_IF_ERROR(ValidateMap("headers", ToMap(d.headers()), true));
  PANTHERD_RETURN_IF_ERROR(ValidateDestinationConfig(*kind, ConfigOf(d)));
  PANTHERD_RETURN_IF_ERROR(ValidateFilters(dest.filters()));
  for (const auto& [id, other] : by_id_) {
    if (id == skip_id) continue;
    if (absl::EqualsIgnoreCase(other.destination().name(), dest.name())) {
      return absl::AlreadyExistsError(absl::StrCat("name: a destination named ",
                                                   other.destination().name(),
                                                   " already exists (id ", id, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status DestinationRegistry::Save(const internal::StoredDestination& d) {
  return store_->PutMessage(store::Family::kDestinations, ConfigKey(d.destination().id()), d);
}

absl::StatusOr<internal::StoredDestination> DestinationRegistry::Add(
    const v1::AddDestinationRequest& request, absl::string_view actor) {
  internal::StoredDestination d;
  v1::Destination& dest = *d.mutable_destination();
  dest.set_name(request.name());
  dest.set_kind(absl::AsciiStrToLower(request.kind()));
  *dest.mutable_settings() = request.settings();
  *dest.mutable_filters() = request.filters();
  *d.mutable_secrets() = request.secrets();
  *d.mutable_headers() = request.headers();
  const google::protobuf::Timestamp now =
      TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(now_()));
  *dest.mutable_created_time() = now;
  *dest.mutable_updated_time() = now;
  dest.set_created_by(std::string(actor));
  absl::MutexLock lock(&mu_);
  do {
    dest.set_id(NewId());
  } while (by_id_.count(dest.id()) > 0);
  PANTHERD_RETURN_IF_ERROR(Validate(d, ""));
  PANTHERD_RETURN_IF_ERROR(Save(d));
  by_id_[dest.id()] = d;
  return d;
}

absl::StatusOr<internal::StoredDestination> DestinationRegistry::Update(
    const v1::UpdateDestinationRequest& request) {
  absl::MutexLock lock(&mu_);
  const internal::StoredDestination* found = FindLocked(request.destination());
  if (found == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no destination named ", absl::CEscape(request.destination())));
  }
  internal::StoredDestination d = *found;
  v1::Destination& dest = *d.mutable_destination();
  if (request.has_name()) dest.set_name(request.name());
  Merge(request.settings(), dest.mutable_settings());
  Merge(request.secrets(), d.mutable_secrets());
  Merge(request.headers(), d.mutable_headers());
  if (request.has_filters()) *dest.mutable_filters() = request.filters();
  *dest.mutable_updated_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(now_()));
  PANTHERD_RETURN_IF_ERROR(Validate(d, dest.id()));
  PANTHERD_RETURN_IF_ERROR(Save(d));
  by_id_[dest.id()] = d;
  return d;
}

absl::StatusOr<internal::StoredDestination> DestinationRegistry::Remove(
    absl::string_view id_or_name) {
  absl::MutexLock lock(&mu_);
  const internal::StoredDestination* found = FindLocked(id_or_name);
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat("no destination named ", absl::CEscape(id_or_name)));
  }
  internal::StoredDestination d = *found;
  PANTHERD_RETURN_IF_ERROR(
      store_->Delete(store::Family::kDestinations, ConfigKey(d.destination().id())));
  by_id_.erase(d.destination().id());
  return d;
}

const internal::StoredDestination* DestinationRegistry::FindLocked(
    absl::string_view id_or_name) const {
  auto it = by_id_.find(std::string(id_or_name));
  if (it != by_id_.end()) return &it->second;
  for (const auto& [id, d] : by_id_) {
    if (d.destination().name() == id_or_name) return &d;
  }
  for (const auto& [id, d] : by_id_) {
    if (absl::EqualsIgnoreCase(d.destination().name(), id_or_name)) return &d;
  }
  return nullptr;
}

absl::StatusOr<internal::StoredDestination> DestinationRegistry::Find(
    absl::string_view id_or_name) const {
  absl::ReaderMutexLock lock(&mu_);
  const internal::StoredDestination* found = FindLocked(id_or_name);
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat("no destination named ", absl::CEscape(id_or_name)));
  }
  return *found;
}

std::optional<internal::StoredDestination> DestinationRegistry::ById(absl::string_view id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = by_id_.find(std::string(id));
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

std::vector<internal::StoredDestination> DestinationRegistry::All() const {
  std::vector<internal::StoredDestination> all;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [id, d] : by_id_) all.push_back(d);
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.destination().name() < b.destination().name();
  });
  return all;
}

}  // namespace pantherd::server
