// File: engine/event.h
//
// The Python event object that rules receive: Panther's `PantherEvent`, built in C++
// over a simdjson DOM so that a rule pays only for the fields it reads. An
// event is parsed once (without the GIL) into an immutable EventDocument;
// MakePantherEvent() then wraps it, under the GIL, in a Python object whose
// lookups walk the parsed tape lazily. Nothing is converted to Python until a
// rule reads it, and nothing read is cached, so every read behaves exactly as
// Panther's dict-backed implementation (docs/rule-contract.md, "The event
// object", is the contract; its "Differences from Panther" lists the few
// exceptions).
//
//   // Any thread, no GIL:
//   absl::StatusOr<std::shared_ptr<const EventDocument>> doc = ParseEvent(json);
//   if (!doc.ok()) return doc.status();  // InvalidArgument: bad JSON
//   // With the GIL held:
//   pybind11::object event = MakePantherEvent(*doc, okta_model);
//   pybind11::object fired = rule_module.attr("rule")(event);
//
// Python side. The embedded module `_pantherd_event` (kEventModuleName)
// defines, with Panther's names:
//   ImmutableCaseInsensitiveDict  read-only Mapping, case-insensitive lookup;
//                                 every nested JSON object is one of these
//   PantherEvent                  subclass of it: the root object, with
//                                 deep_get, deep_walk, udm, udm_path,
//                                 event_time_epoch, lookup, json_encoder
//   ImmutableList                 read-only Sequence; every JSON array
//   DataModel                     DataModel(id, {name: "$.json.path" | callable})
//   PantherError                  raised by udm_path() without a data model
//   json_encoder                  json.dumps(x, default=json_encoder)
// The parsed document is engine/event_document.h, the data model
// engine/data_model.h, the Python-free probe engine/event_probe.h.
// The module is registered when this library is linked in; it is imported on
// first use by MakePantherEvent(), or explicitly with
// pybind11::module_::import(kEventModuleName).
//
// GIL policy: every function here that takes, returns or touches a Python
// object requires the calling thread to hold the GIL; ParseEvent() and
// FindTopLevelString() do not touch Python and need no GIL. Python objects
// made here keep their EventDocument alive through shared ownership.
//
// Errors: the C++ API returns absl::Status and never throws, with one
// documented exception: functions that call into Python (MakePantherEvent,
// DataModel::AddMethod) may let pybind11::error_already_set escape if the
// interpreter itself fails; the caller's pybind11 boundary converts it.

#ifndef PANTHERD_ENGINE_EVENT_H_
#define PANTHERD_ENGINE_EVENT_H_

#include <pybind11/pybind11.h>

#include <memory>

#include "engine/data_model.h"
#include "engine/event_document.h"

namespace pantherd::engine {

// The name of the embedded Python module that defines the event types.
inline constexpr char kEventModuleName[] = "_pantherd_event";

// Returns a new Python `PantherEvent` over `document`, using `data_model` (may
// be null) for udm() and udm_path(). Imports kEventModuleName if needed.
// Requires the GIL. `document` must not be null.
pybind11::object MakePantherEvent(std::shared_ptr<const EventDocument> document,
                                  std::shared_ptr<const DataModel> data_model);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_EVENT_H_
