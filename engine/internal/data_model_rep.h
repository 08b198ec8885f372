// File: engine/internal/data_model_rep.h
//
// The mappings a DataModel (engine/data_model.h) holds, as the Python event
// type (engine/event.cc) resolves them. Not for use outside those files.
// Reading them needs no GIL; calling a method needs it.
#ifndef PANTHERD_ENGINE_INTERNAL_DATA_MODEL_REP_H_
#define PANTHERD_ENGINE_INTERNAL_DATA_MODEL_REP_H_

#include <pybind11/pybind11.h>

#include <string>
#include <string_view>
#include <vector>

#include "engine/data_model.h"
#include "engine/internal/json_path.h"

namespace pantherd::engine {

struct DataModel::Rep {
  struct PathMapping {
    std::string name;
    internal::JsonPath path;
  };
  struct MethodMapping {
    std::string name;
    pybind11::object callable;
  };
  std::vector<PathMapping> paths;
  std::vector<MethodMapping> methods;

  const internal::JsonPath* FindPath(std::string_view name) const {
    for (const PathMapping& mapping : paths) {
      if (mapping.name == name) return &mapping.path;
    }
    return nullptr;
  }
  pybind11::handle FindMethod(std::string_view name) const {
    for (const MethodMapping& mapping : methods) {
      if (mapping.name == name) return mapping.callable;
    }
    return pybind11::handle();
  }
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_INTERNAL_DATA_MODEL_REP_H_
