// File: engine/event.h
//
// The event object that rules receive: Panther's `PantherEvent`, built in C++
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
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pantherd::engine {

// The name of the embedded Python module that defines the event types.
inline constexpr char kEventModuleName[] = "_pantherd_event";

// One parsed event: an immutable simdjson document. Opaque outside event.cc.
// Safe to share between threads and to destroy without the GIL.
class EventDocument;

// Parses one event. The top level must be a JSON object.
//
// Accepts what Python's json.loads accepts (so what Panther accepts), with
// json.loads' meaning: a repeated key keeps its first position and its last
// value; integers beyond 64 bits become Python ints of any size; NaN,
// Infinity and -Infinity, and numbers too large for a double, become Python
// floats. The one input json.loads takes and this rejects is a string with an
// unpaired UTF-16 surrogate escape ("\ud800").
//
// Returns InvalidArgument with simdjson's error text ("JSON parse error: ...")
// if `json` is not valid JSON, or "event is not a JSON object" if the top
// level is an array or a scalar. Needs no GIL; safe to call from any thread.
absl::StatusOr<std::shared_ptr<const EventDocument>> ParseEvent(std::string_view json);

// Returns the string value of the top-level field named exactly `key`
// (case-sensitive, last occurrence wins), or nullopt if it is absent or not a
// string. For C++ callers that route events (p_log_type, p_event_time) before
// any Python runs. The view lives as long as `document`. Needs no GIL.
std::optional<std::string_view> FindTopLevelString(const EventDocument& document,
                                                   std::string_view key);

// What ProbeField found at a path of an event.
enum class FieldKind {
  kMissing,     // absent (get/deep_get would return their default)
  kString,      // a JSON string; ProbeResult::text holds it
  kHashable,    // a number or a boolean
  kUnhashable,  // an object or an array
  kUnknown,     // cannot be decided without Python (null, odd keys, big numbers)
};

struct ProbeResult {
  FieldKind kind = FieldKind::kUnknown;
  std::string_view text;  // set for kString; lives as long as the document
};

// Reads the value that `event.get(path[0])` (one key) or
// `event.deep_get(*path)` returns in a rule, without Python: each key is
// looked up as Panther's case-insensitive mapping does (the exact key, else
// the first key in document order equal to it ignoring case), and a hop
// through a non-object ends at the default (kMissing). When the answer could
// depend on what only Python decides (a JSON null, a key that is not ASCII
// while the exact key is absent, numbers stored as placeholders), returns
// kUnknown. For the pre-conditions of engine/rule_prefilter.h. Needs no GIL.
ProbeResult ProbeField(const EventDocument& document, const std::vector<std::string>& path);

// A Panther data model: named fields ("source_ip", "actor_user") mapped either
// to a JSONPath into the raw event (Panther's `Path`) or to a Python callable
// that receives the event (Panther's `Method`). Built by the rule-spec loader,
// then shared read-only by every event of its log type.
//
// Supported JSONPath syntax: see engine/internal/json_path.h ($, .field,
// ['field'], [N], [*], .*); paths are evaluated case-sensitively.
//
// Thread-safety: build it on one thread; once shared it is immutable and safe
// to read from any thread. Methods are Python objects: a DataModel that holds
// any must be destroyed while the interpreter is alive (its destructor takes
// the GIL itself to release them).
class DataModel {
 public:
  explicit DataModel(std::string id);
  ~DataModel();
  DataModel(const DataModel&) = delete;
  DataModel& operator=(const DataModel&) = delete;

  // The DataModelID, e.g. "Standard.Okta.SystemLog".
  const std::string& id() const { return id_; }

  // Maps `name` to the JSONPath `json_path`. Returns InvalidArgument if the
  // path does not parse (see above), AlreadyExists if `name` is already
  // mapped. No GIL needed.
  absl::Status AddPath(std::string name, std::string_view json_path);

  // Maps `name` to `callable`, which udm(name) calls with the event (an
  // ImmutableCaseInsensitiveDict view of it, exactly as Panther passes it).
  // Requires the GIL. Returns InvalidArgument if `callable` is not callable,
  // AlreadyExists if `name` is already mapped.
  absl::Status AddMethod(std::string name, pybind11::handle callable);

  // True if `name` has a Path or a Method mapping.
  bool HasMapping(std::string_view name) const;

  // The names mapped to paths and to methods, in insertion order.
  std::vector<std::string> PathNames() const;
  std::vector<std::string> MethodNames() const;

  // The text of the path mapped to `name`, or nullopt.
  std::optional<std::string> PathText(std::string_view name) const;

  struct Rep;  // Defined in event.cc.
  const Rep& rep() const { return *rep_; }

 private:
  std::string id_;
  std::unique_ptr<Rep> rep_;
};

// Returns a new Python `PantherEvent` over `document`, using `data_model` (may
// be null) for udm() and udm_path(). Imports kEventModuleName if needed.
// Requires the GIL. `document` must not be null.
pybind11::object MakePantherEvent(std::shared_ptr<const EventDocument> document,
                                  std::shared_ptr<const DataModel> data_model);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_EVENT_H_
