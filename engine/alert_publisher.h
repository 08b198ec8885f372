// File: engine/alert_publisher.h
//
// The seam between storing alert changes and telling subscribers about them.
// AlertEngine calls its publisher with each write's changes once they are
// durable, inside the critical section that assigned their sequences: the
// publisher sees every change exactly once, in sequence order, whoever wrote
// it (ingestion, triage). server/alert_hub.h implements it for StreamAlerts.
#ifndef PANTHERD_ENGINE_ALERT_PUBLISHER_H_
#define PANTHERD_ENGINE_ALERT_PUBLISHER_H_

#include <vector>

#include "pantherd/v1/alerts.pb.h"

namespace pantherd::engine {

class AlertPublisher {
 public:
  virtual ~AlertPublisher() = default;

  // `changes`: durable, in increasing sequence order, never empty. Called
  // with AlertEngine's mutex held, so it must not block (no disk, no waiting
  // on a subscriber) and must not call back into the AlertEngine's writing
  // methods (ApplyBatch, UpdateAlert, PurgeExpired); reads are fine.
  virtual void Publish(std::vector<v1::AlertChange> changes) = 0;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_ALERT_PUBLISHER_H_
