// File: engine/data_model.cc
//
// DataModel: building the mappings (no GIL for paths; the GIL for methods) and
// releasing the Python methods safely at destruction.

#include "engine/data_model.h"

#include <pybind11/pybind11.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "engine/internal/data_model_rep.h"
#include "engine/internal/json_path.h"

namespace py = pybind11;

namespace pantherd::engine {

using internal::JsonPath;

DataModel::DataModel(std::string id) : id_(std::move(id)), rep_(std::make_unique<Rep>()) {}

DataModel::~DataModel() {
  if (rep_->methods.empty()) return;
  if (!Py_IsInitialized()) {
    // The interpreter is gone and its objects with it: nothing to release.
    for (Rep::MethodMapping& mapping : rep_->methods) mapping.callable.release();
    return;
  }
  py::gil_scoped_acquire gil;
  rep_->methods.clear();
}

absl::Status DataModel::AddPath(std::string name, std::string_view json_path) {
  if (HasMapping(name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("DataModel [", id_, "] maps [", name, "] more than once"));
  }
  absl::StatusOr<JsonPath> path = JsonPath::Parse(json_path);
  if (!path.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("DataModel [", id_, "], mapping [", name, "]: ", path.status().message()));
  }
  rep_->paths.push_back(Rep::PathMapping{std::move(name), *std::move(path)});
  return absl::OkStatus();
}

absl::Status DataModel::AddMethod(std::string name, py::handle callable) {
  if (HasMapping(name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("DataModel [", id_, "] maps [", name, "] more than once"));
  }
  if (!callable || !PyCallable_Check(callable.ptr())) {
    return absl::InvalidArgumentError(
        absl::StrCat("DataModel [", id_, "], mapping [", name, "]: method is not callable"));
  }
  rep_->methods.push_back(
      Rep::MethodMapping{std::move(name), py::reinterpret_borrow<py::object>(callable)});
  return absl::OkStatus();
}

bool DataModel::HasMapping(std::string_view name) const {
  return rep_->FindPath(name) != nullptr || rep_->FindMethod(name);
}

std::vector<std::string> DataModel::PathNames() const {
  std::vector<std::string> names;
  for (const Rep::PathMapping& mapping : rep_->paths) names.push_back(mapping.name);
  return names;
}

std::vector<std::string> DataModel::MethodNames() const {
  std::vector<std::string> names;
  for (const Rep::MethodMapping& mapping : rep_->methods) names.push_back(mapping.name);
  return names;
}

std::optional<std::string> DataModel::PathText(std::string_view name) const {
  const JsonPath* path = rep_->FindPath(name);
  if (path == nullptr) return std::nullopt;
  return path->text();
}

}  // namespace pantherd::engine
