// The delivery outbox: how the alert engine records, in the same atomic write
// as an alert change, that the change is to be delivered to destinations.
// The server's delivery manager (server/delivery_manager.h) reads the outbox,
// routes each intent to destinations and deletes it in one write, so a crash
// at any point loses no notification (at-least-once delivery).
//
// Keys live in store family kDeliveries: "o\0" be64(sequence) ->
// pantherd.internal.DeliveryIntent, where sequence is the alert-log sequence
// of the change that caused it (so intents are read in the order the
// changes happened). docs/storage.md has the whole family's layout.
//
// What is an intent:
//   - an alert created (KIND_CREATED) that notifies (not a signal):
//     ACTION_TRIGGER;
//   - triage that moves an alert from an open status (OPEN, TRIAGED) to an
//     ended one (RESOLVED, CLOSED, INVALID): ACTION_RESOLVE.
// Updates (more matches in the window) and other triage record none.
#ifndef PANTHERD_ENGINE_DELIVERY_OUTBOX_H_
#define PANTHERD_ENGINE_DELIVERY_OUTBOX_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pantherd/internal/delivery.pb.h"
#include "pantherd/v1/alerts.pb.h"
#include "store/store.h"

namespace pantherd::engine {

// "o\0": every outbox key starts with it.
inline constexpr absl::string_view kOutboxPrefix = absl::string_view("o\0", 2);

// The outbox key of the intent caused by the change with alert-log sequence
// `sequence`.
std::string OutboxKey(uint64_t sequence);

// Whether `status` ends an alert (RESOLVED, CLOSED, INVALID).
bool IsEndedStatus(v1::AlertStatus status);

// Adds to `batch` the intent for `change` (an alert change about to be
// written with sequence change.sequence()), when it is one (see the file
// comment); `old_status` is the alert's status before a KIND_TRIAGED change
// (ignored for other kinds). Returns whether an intent was added. Pure apart
// from `batch`; thread-compatible.
bool AddDeliveryIntent(const v1::AlertChange& change, v1::AlertStatus old_status, absl::Time now,
                       store::WriteBatch& batch);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_DELIVERY_OUTBOX_H_
