// The stored alert destinations: adding, changing and removing them, with
// their write-only secrets, and an in-memory copy that routing and delivery
// read without touching the disk.
//
// Records: store family kDestinations, "config\0<id>" ->
// pantherd.internal.StoredDestination (docs/storage.md). Secrets (the kind's
// secret fields and custom header values) are stored as given, like a
// source's Okta token, and leave this class only as DestinationConfig for
// building requests: PublicView() drops them, keeping their names.
//
// Thread-safety: every method may be called from any thread; writes are
// serialised on an internal mutex and the in-memory copy changes only after
// the store write succeeded.
#ifndef PANTHERD_SERVER_DESTINATION_REGISTRY_H_
#define PANTHERD_SERVER_DESTINATION_REGISTRY_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "pantherd/internal/delivery.pb.h"
#include "pantherd/v1/destinations.pb.h"
#include "proto/base/clock.h"
#include "server/destination_kind.h"
#include "store/store.h"

namespace pantherd::server {

// "config\0": the key prefix of stored destinations.
inline constexpr absl::string_view kDestinationConfigPrefix = absl::string_view("config\0", 7);

// The reserved destination name that suppresses delivery when a rule's
// destinations() or OutputIds name it (Panther's "SKIP").
inline constexpr absl::string_view kSkipDestination = "SKIP";

class DestinationRegistry {
 public:
  // `store` is not owned and must outlive the registry.
  DestinationRegistry(store::Store* store, base::Clock now);

  // Reads every stored destination. DataLoss for a record that does not
  // parse; the store's errors.
  absl::Status Load() ABSL_LOCKS_EXCLUDED(mu_);

  // Validates and stores a new destination (id given here). InvalidArgument
  // naming the field (name, kind, settings.X, secrets.X, headers,
  // filters.X), never quoting a secret; AlreadyExists for a name in use
  // (names compare case-insensitively); the store's errors.
  absl::StatusOr<internal::StoredDestination> Add(const v1::AddDestinationRequest& request,
                                                  absl::string_view actor) ABSL_LOCKS_EXCLUDED(mu_);

  // Applies an update (see UpdateDestinationRequest) and stores it. NotFound
  // for an unknown destination; InvalidArgument / AlreadyExists as Add.
  absl::StatusOr<internal::StoredDestination> Update(const v1::UpdateDestinationRequest& request)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Deletes it; returns what was removed. NotFound for an unknown one.
  absl::StatusOr<internal::StoredDestination> Remove(absl::string_view id_or_name)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The destination with this id, or else this name (exact, then
  // case-insensitive). NotFound "no destination named X" otherwise.
  absl::StatusOr<internal::StoredDestination> Find(absl::string_view id_or_name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // By id only; nullopt when unknown.
  std::optional<internal::StoredDestination> ById(absl::string_view id) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Every destination, ordered by name.
  std::vector<internal::StoredDestination> All() const ABSL_LOCKS_EXCLUDED(mu_);

  // The API's view: no secret values (only their names, sorted, in
  // secrets_set; header names in header_names).
  static v1::Destination PublicView(const internal::StoredDestination& stored);
  // What the kinds build requests from.
  static DestinationConfig ConfigOf(const internal::StoredDestination& stored);

 private:
  absl::Status Validate(const internal::StoredDestination& d, absl::string_view skip_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Save(const internal::StoredDestination& d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const internal::StoredDestination* FindLocked(absl::string_view id_or_name) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  store::Store* const store_;
  const base::Clock now_;
  mutable absl::Mutex mu_;
  std::map<std::string, internal::StoredDestination> by_id_ ABSL_GUARDED_BY(mu_);
};

// Checks filters: alert types (no signals), a valid severity, non-empty ids
// and log types of at most 200 bytes. InvalidArgument "filters.<field>: ...".
absl::Status ValidateFilters(const v1::DestinationFilters& filters);

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_DESTINATION_REGISTRY_H_
