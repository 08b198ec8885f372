// File: engine/internal/dom_fields.h
//
// Field access on simdjson DOM objects with the semantics of a Python dict
// built by json.loads: when an object repeats a key, the key keeps the
// position of its first occurrence and the value of its last one. Every
// lookup here is exact (case-sensitive); case-insensitive lookup lives in
// engine/event.cc because it needs Python's str.lower().
//
// Internal to pantherd_engine: include only from engine/.

#ifndef PANTHERD_ENGINE_INTERNAL_DOM_FIELDS_H_
#define PANTHERD_ENGINE_INTERNAL_DOM_FIELDS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "simdjson.h"

namespace pantherd::engine::internal {

// The object or array an element of that type holds, by value. Use these in
// range-for loops: iterating `e.get_array().value_unsafe()` directly iterates
// a reference into a temporary that dies before the loop body runs.
inline simdjson::dom::object AsObject(simdjson::dom::element element) {
  return element.get_object().value_unsafe();
}
inline simdjson::dom::array AsArray(simdjson::dom::element element) {
  return element.get_array().value_unsafe();
}

// One distinct key of an object, with the value its last occurrence holds.
struct DomField {
  std::string_view key;
  simdjson::dom::element value;
};

// Sets *value to the value of the last field named exactly `key` and returns
// true, or returns false if `object` has no such field.
inline bool FindLastField(simdjson::dom::object object, std::string_view key,
                          simdjson::dom::element* value) {
  bool found = false;
  for (simdjson::dom::key_value_pair field : object) {
    if (field.key == key) {
      *value = field.value;
      found = true;
    }
  }
  return found;
}

// Appends the distinct keys of `object` to *fields in first-occurrence order,
// each with its last value: exactly the items of json.loads' dict for this
// object. Keys already in *fields before the call are neither looked at nor
// changed, so one vector can serve as a stack for a recursive walk (record
// the size, append, visit, shrink back) and stop allocating once it has
// grown to the deepest walk's need. `fields` is borrowed, not kept; the
// string_views point into the parsed document.
inline void AppendUniqueFields(simdjson::dom::object object, std::vector<DomField>* fields) {
  const size_t base = fields->size();
  // Objects of a few dozen keys (all of Okta's) are deduplicated by a linear
  // scan, which beats hashing at that size; larger ones use an index.
  constexpr size_t kLinearLimit = 32;
  absl::flat_hash_map<std::string_view, size_t> index;
  // One bit per (length, first byte, last byte) class of the keys seen so
  // far: a key whose bit is clear cannot be a repeat, so most keys skip the
  // scan.
  uint64_t seen = 0;
  // Iterators rather than key_value_pair copies: the pair is built on the
  // stack and copied again into the vector, which costs a store-forwarding
  // stall per member.
  for (auto it = object.begin(), end_it = object.end(); it != end_it; ++it) {
    const std::string_view key = it.key();
    const size_t count = fields->size() - base;
    if (count < kLinearLimit && index.empty()) {
      const uint64_t bit =
          key.empty() ? 1
                      : uint64_t{1} << ((key.size() * 7 + static_cast<unsigned char>(key.front()) +
                                         static_cast<unsigned char>(key.back()) * 3) &
                                        63);
      if ((seen & bit) == 0) {
        seen |= bit;
        DomField& added = fields->emplace_back();
        added.key = key;
        added.value = it.value();
        continue;
      }
      DomField* existing = fields->data() + base;
      DomField* const end = existing + count;
      for (; existing != end; ++existing) {
        // Length and first byte before the full comparison: most keys differ there.
        if (existing->key.size() == key.size() &&
            (key.empty() || (existing->key[0] == key[0] && existing->key == key))) {
          break;
        }
      }
      if (existing != end) {
        existing->value = it.value();
      } else {
        fields->push_back(DomField{key, it.value()});
      }
      continue;
    }
    if (index.empty()) {
      for (size_t i = base; i < fields->size(); ++i) index.emplace((*fields)[i].key, i);
    }
    auto [slot, inserted] = index.emplace(key, fields->size());
    if (inserted) {
      fields->push_back(DomField{key, it.value()});
    } else {
      (*fields)[slot->second].value = it.value();
    }
  }
}

// Returns the distinct keys of `object` in first-occurrence order, each with
// its last value (AppendUniqueFields into a new vector).
inline std::vector<DomField> UniqueFields(simdjson::dom::object object) {
  std::vector<DomField> fields;
  AppendUniqueFields(object, &fields);
  return fields;
}

}  // namespace pantherd::engine::internal

#endif  // PANTHERD_ENGINE_INTERNAL_DOM_FIELDS_H_
