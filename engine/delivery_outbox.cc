#include "engine/delivery_outbox.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "store/keys.h"

namespace pantherd::engine {

std::string OutboxKey(uint64_t sequence) {
  return absl::StrCat(kOutboxPrefix, store::EncodeUint64(sequence));
}

bool IsEndedStatus(v1::AlertStatus status) {
  return status == v1::ALERT_STATUS_RESOLVED || status == v1::ALERT_STATUS_CLOSED ||
         status == v1::ALERT_STATUS_INVALID;
}

bool AddDeliveryIntent(const v1::AlertChange& change, v1::AlertStatus old_status, absl::Time now,
                       store::WriteBatch& batch) {
  const v1::Alert& alert = change.alert();
  if (alert.type() == v1::ALERT_TYPE_SIGNAL || alert.type() == v1::ALERT_TYPE_UNSPECIFIED) {
    return false;
  }
  internal::DeliveryIntent intent;
  switch (change.kind()) {
    case v1::AlertChange::KIND_CREATED:
      intent.set_action(internal::DeliveryIntent::ACTION_TRIGGER);
      break;
    case v1::AlertChange::KIND_TRIAGED:
      if (IsEndedStatus(old_status) || !IsEndedStatus(alert.status())) return false;
      intent.set_action(internal::DeliveryIntent::ACTION_RESOLVE);
      break;
    default:
      return false;
  }
  intent.set_alert_id(alert.id());
  *intent.mutable_time() =
      google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(now));
  batch.PutMessage(store::Family::kDeliveries, OutboxKey(change.sequence()), intent);
  return true;
}

}  // namespace pantherd::engine
