// File: engine/data_model.h
//
// Panther's data models (`DataModelID`, `Mappings` of `Path` or `Method`): the
// names udm() and udm_path() resolve for one log type. Built by the rule-spec
// loader of the worker, read by the Python event type (engine/event.h).
#ifndef PANTHERD_ENGINE_DATA_MODEL_H_
#define PANTHERD_ENGINE_DATA_MODEL_H_

#include <pybind11/pybind11.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace pantherd::engine {

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

  struct Rep;  // Defined in engine/internal/data_model_rep.h.
  const Rep& rep() const { return *rep_; }

 private:
  std::string id_;
  std::unique_ptr<Rep> rep_;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_DATA_MODEL_H_
