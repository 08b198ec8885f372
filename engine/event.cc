// File: engine/event.cc
//
// The Python side of events. The parsed document is event_document.cc, the
// probe event_probe.cc, data models data_model.cc. Layout:
//   1. Python conversions and case-insensitive lookup
//   2. The Python types: ImmutableCaseInsensitiveDict, PantherEvent,
//      ImmutableList, DataModel, and the embedded module
//
// Every function here runs with the GIL held: they are called
// by Python, or by MakePantherEvent() whose caller holds the GIL. Python
// errors travel as pybind11::error_already_set (or pybind11's builtin
// exception types) up to the pybind11 dispatcher, which turns them back into
// Python exceptions; this file is the pybind11 boundary that the style guide
// allows to use exceptions.

#include "engine/event.h"

#include <pybind11/embed.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/internal/data_model_rep.h"
#include "engine/internal/dom_fields.h"
#include "engine/internal/event_document.h"
#include "engine/internal/json_numbers.h"
#include "engine/internal/json_path.h"
#include "engine/python/panther_error_py.h"
#include "simdjson.h"

namespace py = pybind11;

namespace pantherd::engine {

using internal::AsciiEqualsIgnoreCase;
using internal::DomField;
using internal::EndsWith;
using internal::ParseDocument;
using internal::FindLastField;
using internal::JsonPath;
using internal::UniqueFields;
using ElementType = simdjson::dom::element_type;

// ---------------------------------------------------------------------------
// 1. Python conversions and lookup
// ---------------------------------------------------------------------------

namespace {

using DocumentRef = std::shared_ptr<const EventDocument>;

// The C++ state behind each Python type.
struct MapView {  // ImmutableCaseInsensitiveDict
  DocumentRef document;
  simdjson::dom::element element;  // Always an object.
  simdjson::dom::object object() const { return element.get_object().value_unsafe(); }
};
struct EventView : MapView {  // PantherEvent
  std::shared_ptr<const DataModel> data_model;
};
struct ListView {  // ImmutableList
  DocumentRef document;
  simdjson::dom::element element;  // Always an array.
  simdjson::dom::array array() const { return element.get_array().value_unsafe(); }
};
struct ListIterator {
  DocumentRef document;
  simdjson::dom::array::iterator next;
  simdjson::dom::array::iterator end;
};

// Python objects the module uses, created when it is imported. Deliberately
// leaked: releasing them at exit would run after the interpreter is gone.
struct ModuleState {
  py::object mapping_abc;
  py::object sequence_abc;
  py::object keys_view;
  py::object items_view;
  py::object values_view;
  py::object json_dumps;
  py::object json_encoder;
  py::object panther_error;
  py::object dateutil_parse;         // Imported on first use.
  py::object dateutil_parser_error;  // Likewise.
};
ModuleState* g_state = nullptr;  // Written and read under the GIL only.

ModuleState& State() {
  if (g_state == nullptr) py::module_::import(kEventModuleName);
  return *g_state;
}

py::object NotImplemented() { return py::reinterpret_borrow<py::object>(Py_NotImplemented); }

[[noreturn]] void ThrowPython() { throw py::error_already_set(); }

py::object Steal(PyObject* object) {
  if (object == nullptr) ThrowPython();
  return py::reinterpret_steal<py::object>(object);
}

bool Truthy(py::handle object) {
  int truth = PyObject_IsTrue(object.ptr());
  if (truth < 0) ThrowPython();
  return truth == 1;
}

bool IsInstance(py::handle object, py::handle type) {
  int result = PyObject_IsInstance(object.ptr(), type.ptr());
  if (result < 0) ThrowPython();
  return result == 1;
}

bool IsMapping(py::handle object) {
  if (PyDict_Check(object.ptr()) || py::isinstance<MapView>(object)) return true;
  if (PyUnicode_Check(object.ptr()) || PyList_Check(object.ptr()) || PyTuple_Check(object.ptr()) ||
      object.is_none()) {
    return false;
  }
  return IsInstance(object, State().mapping_abc);
}

// isinstance(object, Sequence) and not isinstance(object, str).
bool IsNonStringSequence(py::handle object) {
  if (PyList_Check(object.ptr()) || PyTuple_Check(object.ptr()) ||
      py::isinstance<ListView>(object)) {
    return true;
  }
  if (PyUnicode_Check(object.ptr()) || PyDict_Check(object.ptr()) || object.is_none() ||
      PyLong_Check(object.ptr()) || PyFloat_Check(object.ptr())) {
    return false;
  }
  return IsInstance(object, State().sequence_abc);
}

// The UTF-8 text of a Python str, or nullopt if it has none (unpaired
// surrogates): such a key can equal no JSON key.
std::optional<std::string_view> Utf8(py::handle text) {
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(text.ptr(), &size);
  if (data == nullptr) {
    PyErr_Clear();
    return std::nullopt;
  }
  return std::string_view(data, static_cast<size_t>(size));
}

std::string TypeName(py::handle object) {
  return py::str(py::type::handle_of(object).attr("__name__")).cast<std::string>();
}

py::object NumberFromLiteral(std::string_view literal) {
  if (literal == "NaN") return py::float_(std::numeric_limits<double>::quiet_NaN());
  if (literal == "Infinity") return py::float_(std::numeric_limits<double>::infinity());
  if (literal == "-Infinity") return py::float_(-std::numeric_limits<double>::infinity());
  std::string text(literal);
  if (literal.find_first_of(".eE") != std::string_view::npos) {
    return Steal(PyFloat_FromString(py::str(text).ptr()));
  }
  return Steal(PyLong_FromString(text.c_str(), nullptr, 10));
}

py::object StringToPython(const EventDocument& document, std::string_view text) {
  if (document.has_number_placeholders) {
    if (std::optional<std::string_view> literal = internal::NumberPlaceholderLiteral(text)) {
      return NumberFromLiteral(*literal);
    }
  }
  return Steal(PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), nullptr));
}

// Converts a JSON scalar (not an object or array).
py::object ScalarToPython(const EventDocument& document, simdjson::dom::element value) {
  switch (value.type()) {
    case ElementType::STRING:
      return StringToPython(document, value.get_string().value_unsafe());
    case ElementType::INT64:
      return Steal(PyLong_FromLongLong(value.get_int64().value_unsafe()));
    case ElementType::UINT64:
      return Steal(PyLong_FromUnsignedLongLong(value.get_uint64().value_unsafe()));
    case ElementType::DOUBLE:
      return Steal(PyFloat_FromDouble(value.get_double().value_unsafe()));
    case ElementType::BOOL:
      return py::bool_(value.get_bool().value_unsafe());
    default:
      return py::none();
  }
}

// The value as a rule sees it: objects and arrays as immutable views sharing
// `document`, scalars as Python values (Panther's _ensure_immutable).
py::object Wrap(const DocumentRef& document, simdjson::dom::element value) {
  switch (value.type()) {
    case ElementType::OBJECT:
      return py::cast(MapView{document, value});
    case ElementType::ARRAY:
      return py::cast(ListView{document, value});
    default:
      return ScalarToPython(*document, value);
  }
}

// A deep, mutable copy: dicts, lists and scalars, exactly as json.loads makes
// them.
py::object ToPlain(const EventDocument& document, simdjson::dom::element value) {
  switch (value.type()) {
    case ElementType::OBJECT: {
      py::object dict = Steal(PyDict_New());
      for (simdjson::dom::key_value_pair field : internal::AsObject(value)) {
        py::object key = StringToPython(document, field.key);
        py::object item = ToPlain(document, field.value);
        if (PyDict_SetItem(dict.ptr(), key.ptr(), item.ptr()) != 0) ThrowPython();
      }
      return dict;
    }
    case ElementType::ARRAY: {
      py::object list = Steal(PyList_New(0));
      for (simdjson::dom::element element : internal::AsArray(value)) {
        py::object item = ToPlain(document, element);
        if (PyList_Append(list.ptr(), item.ptr()) != 0) ThrowPython();
      }
      return list;
    }
    default:
      return ScalarToPython(document, value);
  }
}

py::object ToPlain(const MapView& view) { return ToPlain(*view.document, view.element); }
py::object ToPlain(const ListView& view) { return ToPlain(*view.document, view.element); }

std::vector<simdjson::dom::element> Elements(simdjson::dom::array array) {
  std::vector<simdjson::dom::element> elements;
  for (simdjson::dom::element element : array) elements.push_back(element);
  return elements;
}

size_t ArraySize(simdjson::dom::array array) {
  size_t size = array.size();
  if (size < 0xFFFFFF) return size;  // simdjson saturates the stored count.
  size = 0;
  for ([[maybe_unused]] simdjson::dom::element element : array) ++size;
  return size;
}

bool IsAscii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// Python's str.lower() of UTF-8 text, as UTF-8.
std::string PythonLower(std::string_view text) {
  py::object str =
      Steal(PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), nullptr));
  py::object lower = Steal(PyObject_CallMethod(str.ptr(), "lower", nullptr));
  std::optional<std::string_view> utf8 = Utf8(lower);
  return utf8.has_value() ? std::string(*utf8) : std::string();
}

// Tells whether a key equals the query under Python's str.lower(), without
// building lowered strings when both are ASCII (always, for Okta).
class LowerMatcher {
 public:
  explicit LowerMatcher(std::string_view query) : query_(query), query_ascii_(IsAscii(query)) {}

  bool Matches(std::string_view key) {
    if (query_ascii_ && IsAscii(key)) {
      return AsciiEqualsIgnoreCase(key, query_);
    }
    if (!query_lower_.has_value()) query_lower_ = PythonLower(query_);
    return PythonLower(key) == *query_lower_;
  }

 private:
  std::string_view query_;
  bool query_ascii_;
  std::optional<std::string> query_lower_;
};

bool IsEmpty(simdjson::dom::object object) { return object.begin() == object.end(); }

// Panther's ImmutableCaseInsensitiveDict.__getitem__ lookup: the exact key if
// present (its last occurrence, as in json.loads' dict), else the first key in
// document order whose lower() equals key.lower(). Sets *value and returns
// true if found. Reproduces Panther's errors for odd keys: TypeError for an
// unhashable key, AttributeError for a non-str key without lower().
bool Lookup(simdjson::dom::object object, py::handle key, simdjson::dom::element* value) {
  if (!PyUnicode_Check(key.ptr())) {
    if (PyObject_Hash(key.ptr()) == -1) ThrowPython();
    if (IsEmpty(object)) return false;
    py::object lowered = key.attr("lower")();
    return false;
  }
  std::optional<std::string_view> query = Utf8(key);
  if (!query.has_value()) return false;
  if (FindLastField(object, *query, value)) return true;
  LowerMatcher matcher(*query);
  bool found = false;
  std::string_view found_key;
  for (simdjson::dom::key_value_pair field : object) {
    if (found) {
      if (field.key == found_key) *value = field.value;  // A repeat: last value wins.
    } else if (matcher.Matches(field.key)) {
      found = true;
      found_key = field.key;
      *value = field.value;
    }
  }
  return found;
}

// Exact-key lookup on the raw event, as `dict.get` does in Panther's
// deep_walk: a non-str key matches nothing (after the hashability check).
bool LookupExact(simdjson::dom::object object, py::handle key, simdjson::dom::element* value) {
  if (!PyUnicode_Check(key.ptr())) {
    if (PyObject_Hash(key.ptr()) == -1) ThrowPython();
    return false;
  }
  std::optional<std::string_view> query = Utf8(key);
  return query.has_value() && FindLastField(object, *query, value);
}

[[noreturn]] void ThrowKeyError(py::handle key) {
  PyErr_SetObject(PyExc_KeyError, key.ptr());
  ThrowPython();
}

// Panther's _ensure_immutable for values that come from Python (data model
// methods): a dict or list becomes an immutable view of a JSON copy of it.
// A value that cannot be serialized to JSON is returned as it is.
py::object EnsureImmutable(py::object value) {
  bool is_dict = PyDict_CheckExact(value.ptr());
  if (!is_dict && !PyList_CheckExact(value.ptr())) return value;
  py::object text;
  try {
    text = State().json_dumps(value, py::arg("default") = State().json_encoder);
  } catch (py::error_already_set&) {
    return value;
  }
  std::optional<std::string_view> utf8 = Utf8(text);
  if (!utf8.has_value()) return value;
  absl::StatusOr<std::shared_ptr<EventDocument>> document = ParseDocument(*utf8);
  if (!document.ok()) return value;
  DocumentRef shared = *std::move(document);
  return Wrap(shared, shared->dom.root());
}

// ---------------------------------------------------------------------------
// 2. The Python types
// ---------------------------------------------------------------------------

const MapView& AsMap(py::handle self) { return self.cast<const MapView&>(); }
const EventView& AsEvent(py::handle self) { return self.cast<const EventView&>(); }
const ListView& AsList(py::handle self) { return self.cast<const ListView&>(); }

// Parses text (str or bytes) or serializes a Mapping / iterable with
// json.dumps(default=json_encoder), for the Python constructors. Raises
// ValueError with the parse error.
DocumentRef DocumentFromPython(py::handle source) {
  py::object text;
  if (PyUnicode_Check(source.ptr()) || PyBytes_Check(source.ptr())) {
    text = py::reinterpret_borrow<py::object>(source);
  } else {
    text = State().json_dumps(source, py::arg("default") = State().json_encoder);
  }
  std::string_view json;
  if (PyBytes_Check(text.ptr())) {
    json = std::string_view(PyBytes_AS_STRING(text.ptr()),
                            static_cast<size_t>(PyBytes_GET_SIZE(text.ptr())));
  } else {
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(text.ptr(), &size);
    if (data == nullptr) ThrowPython();
    json = std::string_view(data, static_cast<size_t>(size));
  }
  absl::StatusOr<std::shared_ptr<EventDocument>> document = ParseDocument(json);
  if (!document.ok()) throw py::value_error(std::string(document.status().message()));
  return *std::move(document);
}

MapView MapFromPython(py::handle source, const char* type_name) {
  if (py::isinstance<MapView>(source)) return AsMap(source);
  if (!PyUnicode_Check(source.ptr()) && !PyBytes_Check(source.ptr()) && !IsMapping(source)) {
    throw py::type_error(
        absl::StrCat(type_name, "() takes JSON text or a Mapping, not ", TypeName(source)));
  }
  DocumentRef document = DocumentFromPython(source);
  if (document->dom.root().type() != ElementType::OBJECT) {
    throw py::value_error(absl::StrCat(type_name, "() needs a JSON object"));
  }
  return MapView{document, document->dom.root()};
}

// ---- ImmutableCaseInsensitiveDict -----------------------------------------

py::object MapGetItem(const MapView& self, py::handle key) {
  simdjson::dom::element value;
  if (!Lookup(self.object(), key, &value)) ThrowKeyError(key);
  return Wrap(self.document, value);
}

py::object MapGet(const MapView& self, py::handle key, py::object default_value) {
  simdjson::dom::element value;
  if (!Lookup(self.object(), key, &value)) return default_value;
  return Wrap(self.document, value);
}

bool MapContains(const MapView& self, py::handle key) {
  simdjson::dom::element value;
  return Lookup(self.object(), key, &value);
}

py::object MapIter(const MapView& self) {
  py::list keys;
  for (const DomField& field : UniqueFields(self.object())) {
    keys.append(StringToPython(*self.document, field.key));
  }
  return Steal(PyObject_GetIter(keys.ptr()));
}

// dict(self.items()) with values wrapped, as Mapping.__eq__ builds it.
py::object WrappedDict(const MapView& self) {
  py::object dict = Steal(PyDict_New());
  for (const DomField& field : UniqueFields(self.object())) {
    py::object key = StringToPython(*self.document, field.key);
    py::object value = Wrap(self.document, field.value);
    if (PyDict_SetItem(dict.ptr(), key.ptr(), value.ptr()) != 0) ThrowPython();
  }
  return dict;
}

py::object MapEq(py::handle self, py::handle other) {
  if (!IsMapping(other)) return NotImplemented();
  py::object mine = WrappedDict(AsMap(self));
  py::object theirs;
  if (PyDict_CheckExact(other.ptr())) {
    theirs = py::reinterpret_borrow<py::object>(other);
  } else if (py::isinstance<MapView>(other)) {
    theirs = WrappedDict(AsMap(other));
  } else {
    theirs = py::dict(other.attr("items")());
  }
  int equal = PyObject_RichCompareBool(mine.ptr(), theirs.ptr(), Py_EQ);
  if (equal < 0) ThrowPython();
  return py::bool_(equal == 1);
}

std::string MapRepr(py::handle self) {
  return absl::StrCat(TypeName(self), "(", py::repr(ToPlain(AsMap(self))).cast<std::string>(), ")");
}

// ---- PantherEvent ----------------------------------------------------------

// Panther's deep_get: reduce(lambda d, key: d.get(key, default) if
// isinstance(d, Mapping) else default, keys, self), then None -> default.
// Hops inside the document never create Python objects.
py::object DeepGet(py::handle self, py::tuple keys, py::object default_value) {
  const MapView& view = AsMap(self);
  if (keys.empty()) return py::reinterpret_borrow<py::object>(self);
  simdjson::dom::element current = view.element;
  bool in_document = true;
  py::object outside;  // The current value once it came from `default_value`.
  for (py::handle key : keys) {
    if (in_document) {
      simdjson::dom::element next;
      if (current.type() == ElementType::OBJECT &&
          Lookup(current.get_object().value_unsafe(), key, &next)) {
        current = next;
        continue;
      }
      in_document = false;
      outside = default_value;
    } else if (IsMapping(outside)) {
      outside = outside.attr("get")(key, default_value);
    } else {
      outside = default_value;
    }
  }
  py::object out = in_document ? Wrap(view.document, current) : outside;
  return out.is_none() ? default_value : out;
}

// Panther's deep_walk. It reads the raw event, so keys are case-SENSITIVE;
// it descends into lists, collecting distinct results in order; leaves come
// back as plain (mutable) values, as Panther returns its raw containers.
class DeepWalker {
 public:
  DeepWalker(DocumentRef document, py::tuple keys, py::object default_value, py::object return_val)
      : document_(std::move(document)),
        keys_(std::move(keys)),
        default_(std::move(default_value)),
        return_val_(std::move(return_val)) {}

  py::object WalkDocument(simdjson::dom::element node, size_t depth) {
    if (depth == keys_.size()) {
      if (node.type() == ElementType::NULL_VALUE || IsEmptyList(node)) return default_;
      return ToPlain(*document_, node);
    }
    switch (node.type()) {
      case ElementType::OBJECT: {
        simdjson::dom::element child;
        if (LookupExact(node.get_object().value_unsafe(), keys_[depth], &child)) {
          return WalkDocument(child, depth + 1);
        }
        return WalkPython(default_, depth + 1);
      }
      case ElementType::ARRAY: {
        py::dict found;
        for (simdjson::dom::element item : internal::AsArray(node)) {
          Collect(found, WalkDocument(item, depth));
        }
        return Select(found);
      }
      default:
        return default_;
    }
  }

  // The same walk over a Python value (only ever reached through `default`).
  py::object WalkPython(py::object node, size_t depth) {
    // PantherEvent(node) shallow-copies anything with a copy() method.
    if (py::hasattr(py::type::handle_of(node), "copy")) node = node.attr("copy")();
    if (depth == keys_.size()) {
      return node.is_none() || IsEmptyList(node) ? default_ : node;
    }
    if (IsMapping(node)) {
      return WalkPython(node.attr("get")(keys_[depth], default_), depth + 1);
    }
    if (IsNonStringSequence(node)) {
      py::dict found;
      for (py::handle item : node) {
        Collect(found, WalkPython(py::reinterpret_borrow<py::object>(item), depth));
      }
      return Select(found);
    }
    return default_;
  }

 private:
  static bool IsEmptyList(simdjson::dom::element node) {
    if (node.type() != ElementType::ARRAY) return false;
    for (simdjson::dom::element item : internal::AsArray(node)) {
      if (!IsEmptyList(item)) return false;
    }
    return true;
  }
  static bool IsEmptyList(py::handle node) {
    if (!IsNonStringSequence(node)) return false;
    for (py::handle item : node) {
      if (!IsEmptyList(item)) return false;
    }
    return true;
  }

  static void Collect(py::dict& found, py::object value) {
    if (value.is_none()) return;
    if (IsNonStringSequence(value)) {
      for (py::handle item : value) found[item] = py::none();
    } else {
      found[value] = py::none();
    }
  }

  py::object Select(const py::dict& found) {
    if (found.empty()) return default_;
    py::list values(found);
    py::dict choices;
    choices["first"] = values[0];
    choices["last"] = values[values.size() - 1];
    choices["all"] = values.size() == 1 ? py::object(values[0]) : py::object(values);
    return choices.attr("get")(return_val_, "all");
  }

  DocumentRef document_;
  py::tuple keys_;
  py::object default_;
  py::object return_val_;
};

py::object DeepWalk(py::handle self, py::args keys, py::object default_value,
                    py::object return_val) {
  const MapView& view = AsMap(self);
  DeepWalker walker(view.document, std::move(keys), std::move(default_value),
                    std::move(return_val));
  return walker.WalkDocument(view.element, 0);
}

[[noreturn]] void ThrowMultipleMatches(const JsonPath& path, const DataModel& model) {
  PyErr_SetString(PyExc_Exception, absl::StrCat("JSONPath [", path.ToString(), "] in DataModel [",
                                                model.id(), "], matched multiple fields.")
                                       .c_str());
  ThrowPython();
}

py::object Udm(py::handle self, py::args keys, py::object default_value) {
  const EventView& view = AsEvent(self);
  const DataModel* model = view.data_model.get();
  if (keys.size() == 1 && model != nullptr) {
    py::handle key = keys[0];
    if (PyUnicode_Check(key.ptr())) {
      std::optional<std::string_view> name = Utf8(key);
      if (name.has_value()) {
        const DataModel::Rep& rep = model->rep();
        if (const JsonPath* path = rep.FindPath(*name)) {
          std::vector<JsonPath::Match> matches = path->Find(view.element, /*max_matches=*/2);
          if (matches.size() > 1) ThrowMultipleMatches(*path, *model);
          if (matches.size() == 1) return Wrap(view.document, matches[0].value);
        }
        if (py::handle method = rep.FindMethod(*name)) {
          // Panther passes _ensure_immutable(raw event): the base type.
          py::object event = py::cast(MapView{view.document, view.element});
          return EnsureImmutable(method(event));
        }
        // A mapped key without a value short-circuits to the default.
        if (model->HasMapping(*name)) return default_value;
      }
    } else if (PyObject_Hash(key.ptr()) == -1) {
      ThrowPython();
    }
  }
  if (keys.empty()) return default_value;
  py::list with_udm;
  with_udm.append(py::str("p_udm"));
  for (py::handle key : keys) with_udm.append(key);
  py::object result = DeepGet(self, py::tuple(with_udm), py::none());
  if (!Truthy(result)) result = DeepGet(self, keys, py::none());
  if (Truthy(result)) return result;
  return default_value;
}

py::object UdmPath(py::handle self, py::handle key) {
  const EventView& view = AsEvent(self);
  const DataModel* model = view.data_model.get();
  if (model == nullptr) {
    simdjson::dom::element log_type;
    py::object log_type_value = FindLastField(view.object(), "p_log_type", &log_type)
                                    ? ToPlain(*view.document, log_type)
                                    : py::none();
    py::object error = State().panther_error(
        py::str("a data model hasn't been specified for log type"), log_type_value);
    PyErr_SetObject(State().panther_error.ptr(), error.ptr());
    ThrowPython();
  }
  if (!PyUnicode_Check(key.ptr())) {
    if (PyObject_Hash(key.ptr()) == -1) ThrowPython();
    return py::none();
  }
  std::optional<std::string_view> name = Utf8(key);
  if (!name.has_value()) return py::none();
  const DataModel::Rep& rep = model->rep();
  if (const JsonPath* path = rep.FindPath(*name)) {
    std::vector<JsonPath::Match> matches = path->Find(view.element, /*max_matches=*/2);
    if (matches.size() > 1) ThrowMultipleMatches(*path, *model);
    if (matches.size() == 1) return py::str(matches[0].full_path);
  }
  if (py::handle method = rep.FindMethod(*name)) {
    if (py::hasattr(method, "__name__")) return method.attr("__name__");
    return py::repr(method);
  }
  return py::none();
}

// Days from 1970-01-01 to the given proleptic Gregorian date.
int64_t DaysFromCivil(int64_t year, int64_t month, int64_t day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;
  const int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

// The fast path of event_time_epoch: "YYYY-MM-DD HH:MM:SS[.fraction] UTC", the
// p_event_time format plus the suffix Panther appends, parsed to the same
// integer int(dateutil.parser.parse(text).timestamp()) gives. Returns nullopt
// for anything else (including out-of-range fields), which then goes to
// dateutil itself, so the two can never disagree.
std::optional<int64_t> ParseCanonicalUtc(std::string_view text) {
  constexpr std::string_view kSuffix = " UTC";
  if (text.size() < 19 + kSuffix.size() || !EndsWith(text, kSuffix)) return std::nullopt;
  text.remove_suffix(kSuffix.size());
  auto number = [&](size_t at, size_t width) -> std::optional<int64_t> {
    int64_t value = 0;
    for (size_t i = at; i < at + width; ++i) {
      if (!internal::IsAsciiDigit(text[i])) return std::nullopt;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  if (text[4] != '-' || text[7] != '-' || text[10] != ' ' || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  std::optional<int64_t> year = number(0, 4), month = number(5, 2), day = number(8, 2),
                         hour = number(11, 2), minute = number(14, 2), second = number(17, 2);
  if (!year || !month || !day || !hour || !minute || !second) return std::nullopt;
  int64_t microseconds = 0;
  if (text.size() > 19) {
    if (text[19] != '.' || text.size() == 20) return std::nullopt;
    for (size_t i = 20; i < text.size(); ++i) {
      if (!internal::IsAsciiDigit(text[i])) return std::nullopt;
      if (i < 26) microseconds = microseconds * 10 + (text[i] - '0');
    }
    for (size_t i = text.size(); i < 26; ++i) microseconds *= 10;  // dateutil pads to 6 digits.
  }
  static constexpr int kDaysInMonth[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (*year % 4 == 0 && *year % 100 != 0) || *year % 400 == 0;
  if (*year < 1 || *month < 1 || *month > 12 || *day < 1 || *hour > 23 || *minute > 59 ||
      *second > 59) {
    return std::nullopt;
  }
  if (*day > kDaysInMonth[*month - 1] + (*month == 2 && leap ? 1 : 0)) return std::nullopt;
  int64_t seconds =
      DaysFromCivil(*year, *month, *day) * 86400 + *hour * 3600 + *minute * 60 + *second;
  // Python computes timestamp() as total microseconds / 10**6 in double and
  // int() truncates; below 2**53 microseconds (years ~1685-2255) the same two
  // steps in C++ round identically.
  int64_t total_microseconds = seconds * 1000000 + microseconds;
  constexpr int64_t kExact = int64_t{1} << 53;
  if (total_microseconds >= kExact || total_microseconds <= -kExact) return std::nullopt;
  return static_cast<int64_t>(std::trunc(static_cast<double>(total_microseconds) / 1e6));
}

// Panther's event_time_epoch: int(dateutil.parser.parse(p_event_time + " UTC")
// .timestamp()), 0 on dateutil.parser.ParserError. The canonical format is
// parsed in C++; anything else goes to dateutil.
py::object EventTimeEpoch(py::handle self, py::handle force_utc) {
  py::object event_time = MapGet(AsMap(self), py::str("p_event_time"), py::none());
  if (!Truthy(event_time)) event_time = py::str("");
  if (Truthy(force_utc)) {
    event_time = Steal(PyNumber_InPlaceAdd(event_time.ptr(), py::str(" UTC").ptr()));
    if (PyUnicode_Check(event_time.ptr())) {
      std::optional<std::string_view> text = Utf8(event_time);
      if (text.has_value()) {
        if (std::optional<int64_t> epoch = ParseCanonicalUtc(*text)) return py::int_(*epoch);
      }
    }
  }
  ModuleState& state = State();
  if (!state.dateutil_parse) {
    py::module_ parser = py::module_::import("dateutil.parser");
    state.dateutil_parse = parser.attr("parse");
    state.dateutil_parser_error = parser.attr("ParserError");
  }
  try {
    py::object parsed = state.dateutil_parse(event_time);
    return Steal(PyNumber_Long(parsed.attr("timestamp")().ptr()));
  } catch (py::error_already_set& error) {
    if (error.matches(state.dateutil_parser_error)) return py::int_(0);
    throw;
  }
}

py::object JsonEncoder(py::handle object) {
  if (py::isinstance<MapView>(object)) return ToPlain(AsMap(object));
  if (py::isinstance<ListView>(object)) return ToPlain(AsList(object));
  throw py::type_error(absl::StrCat("object of type ",
                                    py::str(py::type::handle_of(object)).cast<std::string>(),
                                    " is not JSON serializable"));
}

// ---- ImmutableList ---------------------------------------------------------

py::object ListGetItem(const ListView& self, py::handle index) {
  if (PySlice_Check(index.ptr())) {
    // Panther slices the wrapped tuple: the result is a plain tuple.
    std::vector<simdjson::dom::element> elements = Elements(self.array());
    Py_ssize_t start = 0, stop = 0, step = 0;
    if (PySlice_Unpack(index.ptr(), &start, &stop, &step) < 0) ThrowPython();
    Py_ssize_t count =
        PySlice_AdjustIndices(static_cast<Py_ssize_t>(elements.size()), &start, &stop, step);
    py::tuple out(static_cast<size_t>(count));
    for (Py_ssize_t i = 0, at = start; i < count; ++i, at += step) {
      out[static_cast<size_t>(i)] = ToPlain(*self.document, elements[static_cast<size_t>(at)]);
    }
    return std::move(out);
  }
  if (!PyIndex_Check(index.ptr())) {
    throw py::type_error(
        absl::StrCat("tuple indices must be integers or slices, not ", TypeName(index)));
  }
  Py_ssize_t i = PyNumber_AsSsize_t(index.ptr(), PyExc_IndexError);
  if (i == -1 && PyErr_Occurred()) ThrowPython();
  Py_ssize_t size = static_cast<Py_ssize_t>(ArraySize(self.array()));
  if (i < 0) i += size;
  if (i < 0 || i >= size) throw py::index_error("tuple index out of range");
  simdjson::dom::element value = self.array().at(static_cast<size_t>(i)).value_unsafe();
  return Wrap(self.document, value);
}

// Compares elements as Sequence.__contains__/count/index do: `v is x or v == x`.
bool ElementEquals(py::handle element, py::handle value) {
  int equal = PyObject_RichCompareBool(element.ptr(), value.ptr(), Py_EQ);
  if (equal < 0) ThrowPython();
  return equal == 1;
}

bool ListContains(const ListView& self, py::handle value) {
  for (simdjson::dom::element element : self.array()) {
    if (ElementEquals(Wrap(self.document, element), value)) return true;
  }
  return false;
}

size_t ListCount(const ListView& self, py::handle value) {
  size_t count = 0;
  for (simdjson::dom::element element : self.array()) {
    if (ElementEquals(Wrap(self.document, element), value)) ++count;
  }
  return count;
}

// Sequence.index(value, start=0, stop=None).
size_t ListIndex(const ListView& self, py::handle value, Py_ssize_t start,
                 std::optional<Py_ssize_t> stop) {
  std::vector<simdjson::dom::element> elements = Elements(self.array());
  Py_ssize_t size = static_cast<Py_ssize_t>(elements.size());
  if (start < 0) start = std::max<Py_ssize_t>(size + start, 0);
  if (stop.has_value() && *stop < 0) *stop += size;
  Py_ssize_t end = stop.has_value() ? std::min(*stop, size) : size;
  for (Py_ssize_t i = start; i < end; ++i) {
    if (ElementEquals(Wrap(self.document, elements[static_cast<size_t>(i)]), value)) {
      return static_cast<size_t>(i);
    }
  }
  PyErr_SetNone(PyExc_ValueError);
  ThrowPython();
}

py::object PlainTuple(const ListView& self) { return Steal(PySequence_Tuple(ToPlain(self).ptr())); }

// ImmutableList.__eq__: equal to another ImmutableList, a list or a tuple with
// equal contents (compared as Panther does, on the raw values); False for
// anything else.
bool ListEq(const ListView& self, py::handle other) {
  py::object theirs;
  if (py::isinstance<ListView>(other)) {
    theirs = PlainTuple(AsList(other));
  } else if (PyList_Check(other.ptr()) || PyTuple_Check(other.ptr())) {
    if (static_cast<size_t>(PyObject_Length(other.ptr())) != ArraySize(self.array())) return false;
    theirs = Steal(PySequence_Tuple(other.ptr()));
  } else {
    return false;
  }
  int equal = PyObject_RichCompareBool(PlainTuple(self).ptr(), theirs.ptr(), Py_EQ);
  if (equal < 0) ThrowPython();
  return equal == 1;
}

ListView ListFromPython(py::handle source) {
  if (py::isinstance<ListView>(source)) return AsList(source);
  DocumentRef document = DocumentFromPython(py::list(py::reinterpret_borrow<py::object>(source)));
  if (document->dom.root().type() != ElementType::ARRAY) {
    throw py::value_error("ImmutableList() needs a JSON array");
  }
  return ListView{document, document->dom.root()};
}

void SetShortTypeName(const py::object& type, const char* name) {
  // Python classes' tp_name is their bare name; pybind11 prefixes the module.
  // Panther's messages ("'PantherEvent' object does not support item
  // assignment", "'ImmutableList' object has no attribute 'append'") come
  // from tp_name, so use the bare name too.
  reinterpret_cast<PyTypeObject*>(type.ptr())->tp_name = name;
}

constexpr char kEventModuleDoc[] =
    "pantherd's event object: Panther's PantherEvent over a lazily read simdjson DOM.";

}  // namespace

py::object MakePantherEvent(std::shared_ptr<const EventDocument> document,
                            std::shared_ptr<const DataModel> data_model) {
  State();  // Registers the Python types on first use.
  EventView view;
  view.element = document->dom.root();
  view.document = std::move(document);
  view.data_model = std::move(data_model);
  return py::cast(std::move(view));
}

PYBIND11_EMBEDDED_MODULE(_pantherd_event, m) {
  m.doc() = kEventModuleDoc;
  auto* state = new ModuleState();  // Leaked on purpose: see ModuleState.
  py::module_ abc = py::module_::import("collections.abc");
  state->mapping_abc = abc.attr("Mapping");
  state->sequence_abc = abc.attr("Sequence");
  state->keys_view = abc.attr("KeysView");
  state->items_view = abc.attr("ItemsView");
  state->values_view = abc.attr("ValuesView");
  state->json_dumps = py::module_::import("json").attr("dumps");

  py::class_<MapView> map(m, "ImmutableCaseInsensitiveDict",
                          "Read-only Mapping with case-insensitive keys; every nested JSON "
                          "object of an event is one.");
  map.def(py::init([](py::handle container) {
            return MapFromPython(container, "ImmutableCaseInsensitiveDict");
          }),
          py::arg("container"))
      .def("__getitem__", &MapGetItem, py::arg("key"))
      .def("get", &MapGet, py::arg("key"), py::arg("default") = py::none())
      .def("__contains__", &MapContains, py::arg("key"))
      .def("__len__", [](const MapView& self) { return UniqueFields(self.object()).size(); })
      .def("__iter__", &MapIter)
      .def("keys", [](py::object self) { return State().keys_view(self); })
      .def("items", [](py::object self) { return State().items_view(self); })
      .def("values", [](py::object self) { return State().values_view(self); })
      .def("__eq__", &MapEq, py::arg("other"))
      .def("__repr__", &MapRepr)
      .def(
          "copy", [](const MapView& self) { return ToPlain(self); },
          "A deep, mutable copy as a dict.")
      .def(
          "to_dict", [](const MapView& self) { return ToPlain(self); },
          "A deep, mutable copy as a dict.")
      .def("__copy__", [](py::object self) { return self; })
      .def(
          "__deepcopy__", [](py::object self, py::handle) { return self; }, py::arg("memo"));
  map.attr("__reversed__") = py::none();  // As on collections.abc.Mapping.

  py::class_<EventView, MapView> event(m, "PantherEvent",
                                       "The event a rule receives: an "
                                       "ImmutableCaseInsensitiveDict with Panther's helpers.");
  event
      .def(py::init([](py::handle source, py::handle data_model) {
             EventView view;
             static_cast<MapView&>(view) = MapFromPython(source, "PantherEvent");
             if (!data_model.is_none()) {
               if (!py::isinstance<DataModel>(data_model)) {
                 throw py::type_error(absl::StrCat("data_model must be a DataModel or None, not ",
                                                   TypeName(data_model)));
               }
               view.data_model = data_model.cast<std::shared_ptr<DataModel>>();
             }
             return view;
           }),
           py::arg("event"), py::arg("data_model") = py::none())
      .def_property_readonly("data_model",
                             [](const EventView& self) -> py::object {
                               if (!self.data_model) return py::none();
                               return py::cast(std::const_pointer_cast<DataModel>(self.data_model));
                             })
      .def(
          "deep_get",
          [](py::handle self, py::args keys, py::object default_value) {
            return DeepGet(self, std::move(keys), std::move(default_value));
          },
          py::arg("default") = py::none())
      .def("deep_walk", &DeepWalk, py::arg("default") = py::none(), py::arg("return_val") = "all")
      .def("udm", &Udm, py::arg("default") = py::none())
      .def("udm_path", &UdmPath, py::arg("key"))
      .def("event_time_epoch", &EventTimeEpoch, py::arg("force_utc") = true)
      .def(
          "lookup",
          [](py::handle self, py::object table, py::object key) {
            return DeepGet(self, py::make_tuple(py::str("_mocked_lookup_data_"), table, key),
                           py::none());
          },
          py::arg("lookup_name"), py::arg("lookup_key"))
      .def_static("json_encoder", &JsonEncoder, py::arg("obj"));

  py::class_<ListView> list(m, "ImmutableList",
                            "Read-only Sequence; every JSON array of an event is one.");
  list.def(py::init(&ListFromPython), py::arg("container"))
      .def("__getitem__", &ListGetItem, py::arg("index"))
      .def("__len__", [](const ListView& self) { return ArraySize(self.array()); })
      .def("__iter__",
           [](const ListView& self) {
             return ListIterator{self.document, self.array().begin(), self.array().end()};
           })
      .def("__reversed__",
           [](const ListView& self) {
             py::list items;
             for (simdjson::dom::element element : self.array()) {
               items.append(Wrap(self.document, element));
             }
             if (PyList_Reverse(items.ptr()) != 0) ThrowPython();
             return Steal(PyObject_GetIter(items.ptr()));
           })
      .def("__contains__", &ListContains, py::arg("value"))
      .def("count", &ListCount, py::arg("value"))
      .def("index", &ListIndex, py::arg("value"), py::arg("start") = 0,
           py::arg("stop") = py::none())
      .def("__eq__", &ListEq, py::arg("other"))
      .def("__repr__",
           [](py::handle self) {
             return absl::StrCat(TypeName(self), "(",
                                 py::repr(PlainTuple(AsList(self))).cast<std::string>(), ")");
           })
      .def(
          "copy", [](const ListView& self) { return ToPlain(self); },
          "A deep, mutable copy as a list.")
      .def(
          "as_list", [](const ListView& self) { return ToPlain(self); },
          "A deep, mutable copy as a list.")
      .def("__copy__", [](py::object self) { return self; })
      .def(
          "__deepcopy__", [](py::object self, py::handle) { return self; }, py::arg("memo"));

  py::class_<ListIterator>(m, "ImmutableListIterator")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", [](ListIterator& self) {
        if (self.next == self.end) throw py::stop_iteration();
        simdjson::dom::element element = *self.next;
        ++self.next;
        return Wrap(self.document, element);
      });

  py::class_<DataModel, std::shared_ptr<DataModel>>(
      m, "DataModel", "DataModel(data_model_id, {name: '$.json.path' or callable})")
      .def(py::init([](std::string id, py::handle mappings) {
             auto model = std::make_shared<DataModel>(std::move(id));
             py::object items = IsMapping(mappings) ? mappings.attr("items")()
                                                    : py::reinterpret_borrow<py::object>(mappings);
             for (py::handle item : items) {
               py::tuple pair = py::reinterpret_borrow<py::object>(item).cast<py::tuple>();
               std::string name = pair[0].cast<std::string>();
               py::object target = pair[1];
               absl::Status status;
               if (PyUnicode_Check(target.ptr())) {
                 status = model->AddPath(name, target.cast<std::string>());
               } else if (PyCallable_Check(target.ptr())) {
                 status = model->AddMethod(name, target);
               } else {
                 throw py::type_error(absl::StrCat("DataModel mapping [", name,
                                                   "] must be a JSONPath str or a callable"));
               }
               if (!status.ok()) throw py::value_error(std::string(status.message()));
             }
             return model;
           }),
           py::arg("data_model_id"), py::arg("mappings"))
      .def_property_readonly("data_model_id", &DataModel::id)
      .def_property_readonly("paths",
                             [](const DataModel& self) {
                               py::dict paths;
                               for (const std::string& name : self.PathNames()) {
                                 paths[py::str(name)] = py::str(*self.PathText(name));
                               }
                               return paths;
                             })
      .def_property_readonly("methods",
                             [](const DataModel& self) {
                               py::dict methods;
                               for (const std::string& name : self.MethodNames()) {
                                 methods[py::str(name)] = self.rep().FindMethod(name);
                               }
                               return methods;
                             })
      .def("__repr__", [](const DataModel& self) {
        return absl::StrCat("DataModel(", py::repr(py::str(self.id())).cast<std::string>(), ")");
      });

  m.def("json_encoder", &JsonEncoder, py::arg("obj"),
        "json.dumps(x, default=json_encoder) serializes events and their parts.");
  // PantherError (engine/python/panther_error.py). Its docstring replaces the
  // module's, which is set again below.
  py::exec(py::str(embedded::kPantherErrorPy, embedded::kPantherErrorPySize), m.attr("__dict__"));
  m.doc() = kEventModuleDoc;

  SetShortTypeName(map, "ImmutableCaseInsensitiveDict");
  SetShortTypeName(event, "PantherEvent");
  SetShortTypeName(list, "ImmutableList");
  state->mapping_abc.attr("register")(map);
  state->sequence_abc.attr("register")(list);
  state->json_encoder = m.attr("json_encoder");
  state->panther_error = m.attr("PantherError");
  g_state = state;
}

}  // namespace pantherd::engine
