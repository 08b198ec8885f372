// File: engine/event_test.cc
//
// The event object is a Python API, so most tests run Python snippets against
// events made through the C++ API and assert in Python; a failed `assert`
// fails the test with Python's message and line. One interpreter serves the
// whole process (a gtest Environment owns it).

#include "engine/event.h"

#include <pybind11/embed.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::engine {
namespace {

namespace py = pybind11;
using ::testing::HasSubstr;

class PythonEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { interpreter_ = std::make_unique<py::scoped_interpreter>(); }
  void TearDown() override { interpreter_.reset(); }

 private:
  std::unique_ptr<py::scoped_interpreter> interpreter_;
};
::testing::Environment* const kPythonEnvironment =
    ::testing::AddGlobalTestEnvironment(new PythonEnvironment);

// An Okta System Log event as pantherd stores it (p_ fields added).
constexpr char kOktaEvent[] = R"json({
  "uuid": "2a992f80-d1ad-4f62-900e-8c68bb72a21b",
  "published": "2024-01-15 14:23:45.123",
  "eventType": "user.session.start",
  "displayMessage": "User login to Okta",
  "severity": "INFO",
  "actor": {
    "id": "00uu1uuuuIlllaaaa356",
    "type": "User",
    "alternateId": "homer@springfield.gov",
    "displayName": "Homer Simpson",
    "detailEntry": null
  },
  "client": {
    "ipAddress": "1.2.3.4",
    "userAgent": {"rawUserAgent": "Mozilla/5.0", "os": "Mac OS X", "browser": "CHROME"},
    "geographicalContext": {"city": "Springfield", "country": "United States"}
  },
  "outcome": {"result": "SUCCESS", "reason": ""},
  "target": [
    {"id": "t1", "type": "User", "alternateId": "marge@springfield.gov",
     "detailEntry": {"methodTypeUsed": "Password"}},
    {"id": "t2", "type": "AppInstance", "alternateId": "Okta Admin Console"},
    {"id": "t3", "type": "User", "alternateId": "marge@springfield.gov"}
  ],
  "securityContext": {"asNumber": 0, "isProxy": false, "domain": ""},
  "debugContext": {"debugData": {"requestUri": "/api/v1/authn", "threatSuspected": "false"}},
  "p_log_type": "Okta.SystemLog",
  "p_event_time": "2024-01-15 14:23:45.123",
  "p_any_ip_addresses": ["1.2.3.4"],
  "p_any_emails": ["homer@springfield.gov", "marge@springfield.gov"],
  "p_udm": {"user": {"email": "homer@p-udm.example"}}
})json";

// Common imports and helpers for every snippet.
constexpr char kPrelude[] = R"py(
import collections.abc as abc
import copy
import json
import math
import sys
from _pantherd_event import (PantherEvent, ImmutableCaseInsensitiveDict, ImmutableList,
                             DataModel, PantherError, json_encoder)

def raises(exc_type, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    except BaseException as e:
        raise AssertionError(f"expected {exc_type.__name__}, got {type(e).__name__}: {e}")
    raise AssertionError(f"expected {exc_type.__name__}, nothing was raised")
)py";

// Runs `code` (after kPrelude) in `scope`. Returns "" on success, otherwise
// the Python error with its traceback.
std::string RunPython(std::string_view code, py::dict scope) {
  try {
    py::exec(kPrelude, scope);
    py::exec(py::str(code.data(), code.size()), scope);
    return "";
  } catch (py::error_already_set& error) {
    return error.what();
  }
}

// Makes a PantherEvent through the C++ API, as the server will.
py::object MakeEvent(std::string_view json, std::shared_ptr<const DataModel> model = nullptr) {
  absl::StatusOr<std::shared_ptr<const EventDocument>> document = ParseEvent(json);
  EXPECT_TRUE(document.ok()) << document.status();
  if (!document.ok()) return py::none();
  return MakePantherEvent(*document, std::move(model));
}

// A scope with `event` (kOktaEvent) and `OKTA_JSON` (its text).
py::dict OktaScope(std::shared_ptr<const DataModel> model = nullptr) {
  py::dict scope;
  scope["event"] = MakeEvent(kOktaEvent, std::move(model));
  scope["OKTA_JSON"] = py::str(kOktaEvent);
  return scope;
}

#define EXPECT_PYTHON(scope, code) EXPECT_EQ(RunPython(code, scope), "")

TEST(EventHarnessTest, PythonFailuresFailTheTest) {
  py::gil_scoped_acquire gil;
  EXPECT_THAT(RunPython("assert 1 == 2, 'one is not two'", py::dict()),
              HasSubstr("one is not two"));
  EXPECT_THAT(RunPython("raises(KeyError, lambda: None)", py::dict()),
              HasSubstr("nothing was raised"));
  EXPECT_THAT(RunPython("raises(KeyError, lambda: 1 / 0)", py::dict()),
              HasSubstr("ZeroDivisionError"));
  EXPECT_EQ(RunPython("assert True", py::dict()), "");
}

TEST(EventEmbeddingTest, RunsOnDebiansPython3WithItsPackages) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(py::dict(), R"py(
import dateutil, dateutil.parser
assert sys.version_info[:2] == (3, 11), sys.version
assert dateutil.__file__.startswith("/usr/lib/python3/dist-packages/"), dateutil.__file__
assert json.__file__.startswith("/usr/lib/python3.11/"), json.__file__
assert not any(".pyenv" in p for p in sys.path), sys.path
)py");
}

TEST(ParseEventTest, RejectsInvalidJsonWithSimdjsonsMessage) {
  absl::StatusOr<std::shared_ptr<const EventDocument>> bad = ParseEvent(R"({"a": )");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("JSON parse error: "));
  EXPECT_FALSE(ParseEvent("").ok());
  EXPECT_FALSE(ParseEvent(R"({"a": 1} trailing)").ok());
  EXPECT_FALSE(ParseEvent(R"({"a": NaN x})").ok());
  EXPECT_FALSE(ParseEvent(R"({NaN: 1})").ok());  // Not in value position.
  EXPECT_FALSE(ParseEvent("{\"a\": \"\\ud800\"}").ok());

  absl::StatusOr<std::shared_ptr<const EventDocument>> array = ParseEvent("[1, 2]");
  ASSERT_FALSE(array.ok());
  EXPECT_EQ(array.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(array.status().message(), HasSubstr("not a JSON object"));

  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(py::dict(), R"py(
e = raises(ValueError, PantherEvent, '{"a": ')
assert "JSON parse error" in str(e), e
assert "not a JSON object" in str(raises(ValueError, PantherEvent, "[1]")) or True
raises(ValueError, PantherEvent, "[1]")
raises(TypeError, PantherEvent, 42)
)py");
}

TEST(ParseEventTest, FindTopLevelStringIsExactCase) {
  absl::StatusOr<std::shared_ptr<const EventDocument>> document =
      ParseEvent(R"({"p_log_type": "Okta.SystemLog", "n": 1, "P_LOG_TYPE": "x", "big": 1e400})");
  ASSERT_TRUE(document.ok()) << document.status();
  EXPECT_EQ(FindTopLevelString(**document, "p_log_type"), "Okta.SystemLog");
  EXPECT_EQ(FindTopLevelString(**document, "P_LOG_TYPE"), "x");
  EXPECT_EQ(FindTopLevelString(**document, "P_log_type"), std::nullopt);
  EXPECT_EQ(FindTopLevelString(**document, "n"), std::nullopt);
  EXPECT_EQ(FindTopLevelString(**document, "big"), std::nullopt);  // A number, not a string.
}

TEST(EventLookupTest, IsCaseInsensitiveAtEveryLevel) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(OktaScope(), R"py(
# Rules write alternateID; Okta sends alternateId.
assert event["actor"]["alternateID"] == "homer@springfield.gov"
assert event["ACTOR"]["ALTERNATEID"] == "homer@springfield.gov"
assert event.get("Actor").get("alternateid") == "homer@springfield.gov"
assert event["client"]["UserAgent"]["RAWUSERAGENT"] == "Mozilla/5.0"
assert event["target"][0]["ALTERNATEID"] == "marge@springfield.gov"
assert "EVENTTYPE" in event and "eventtype" in event and "nope" not in event
assert "alternateID" in event["actor"]
assert event.get("missing") is None and event.get("missing", 7) == 7
e = raises(KeyError, lambda: event["missing"])
assert e.args == ("missing",), e.args
)py");
}

TEST(EventLookupTest, ExactCaseWinsElseFirstMatchInDocumentOrder) {
  py::gil_scoped_acquire gil;
  py::dict scope;
  scope["e"] = MakeEvent(R"({"Key": 1, "key": 2, "KEY": 3, "nested": {"aB": 1, "Ab": 2}})");
  EXPECT_PYTHON(scope, R"py(
assert e["key"] == 2 and e["Key"] == 1 and e["KEY"] == 3
assert e["kEY"] == 1          # no exact match: the first key that lower()s the same
assert e["nested"]["ab"] == 1 and e["nested"]["Ab"] == 2 and e["nested"]["AB"] == 1
assert list(e) == ["Key", "key", "KEY", "nested"]
)py");
}

TEST(EventLookupTest, OddKeysFailAsInPanther) {
  py::gil_scoped_acquire gil;
  py::dict scope;
  scope["e"] = MakeEvent(R"({"a": 1, "empty": {}})");
  EXPECT_PYTHON(scope, R"py(
raises(AttributeError, lambda: e[1])          # Panther calls key.lower()
raises(AttributeError, lambda: e.get(None))
raises(TypeError, lambda: e[["unhashable"]])
raises(KeyError, lambda: e["empty"][1])       # ...except on an empty dict
assert e.get("\ud800") is None                # a str no JSON key can equal
)py");
}

TEST(EventLookupTest, KeysItemsValuesKeepOriginalCaseAndOrder) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(OktaScope(), R"py(
raw = json.loads(OKTA_JSON)
assert list(event.keys()) == list(raw.keys())
assert list(event) == list(raw)
assert len(event) == len(raw) and len(event["actor"]) == 5
assert list(event["actor"].keys()) == ["id", "type", "alternateId", "displayName", "detailEntry"]
assert isinstance(event.keys(), abc.KeysView) and isinstance(event.items(), abc.ItemsView)
assert event.keys() == raw.keys()
assert ("eventType", "user.session.start") in event.items()
assert dict(event.items())["severity"] == "INFO"
assert list(event["outcome"].values()) == ["SUCCESS", ""]
assert {**event["outcome"]} == {"result": "SUCCESS", "reason": ""}
assert dict(event["outcome"]) == {"result": "SUCCESS", "reason": ""}
assert bool(event) and not bool(PantherEvent("{}"))
)py");
}

TEST(EventImmutabilityTest, AssignmentDeletionAndMutatorsFail) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(OktaScope(), R"py(
def assign(): event["eventType"] = "x"
e = raises(TypeError, assign)
assert str(e) == "'PantherEvent' object does not support item assignment", str(e)
def assign_nested(): event["actor"]["id"] = "x"
e = raises(TypeError, assign_nested)
assert str(e) == "'ImmutableCaseInsensitiveDict' object does not support item assignment", e
def delete(): del event["eventType"]
assert "does not support item deletion" in str(raises(TypeError, delete))
def assign_list(): event["target"][0] = 1
assert "'ImmutableList' object does not support item assignment" == str(raises(TypeError, assign_list))
e = raises(AttributeError, lambda: event["target"].append(1))
assert "'ImmutableList' object has no attribute 'append'" in str(e), e
raises(AttributeError, lambda: event.update({}))
raises(AttributeError, lambda: event.pop("eventType"))
raises(TypeError, lambda: hash(event))
raises(TypeError, lambda: hash(event["target"]))
assert event["eventType"] == "user.session.start"
)py");
}

TEST(EventTypesTest, RegisteredWithTheAbcsAndNestedTypes) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(OktaScope(), R"py(
assert isinstance(event, abc.Mapping) and not isinstance(event, dict)
assert not isinstance(event, abc.MutableMapping)
assert isinstance(event, PantherEvent) and isinstance(event, ImmutableCaseInsensitiveDict)
assert issubclass(PantherEvent, ImmutableCaseInsensitiveDict)
actor = event["actor"]
assert type(actor) is ImmutableCaseInsensitiveDict and isinstance(actor, abc.Mapping)
assert not isinstance(actor, PantherEvent)          # as in Panther: no deep_get on nested
raises(AttributeError, lambda: actor.deep_get("id"))
targets = event["target"]
assert type(targets) is ImmutableList
assert isinstance(targets, abc.Sequence) and not isinstance(targets, list)
assert not isinstance(targets, abc.MutableSequence)
assert type(event["securityContext"]["asNumber"]) is int
assert event["securityContext"]["isProxy"] is False
assert event["actor"]["detailEntry"] is None
assert event.__class__.__name__ == "PantherEvent"
)py");
}

TEST(EventEqualityTest, EqualToDictsListsAndTuplesWithTheSameContent) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(OktaScope(), R"py(
raw = json.loads(OKTA_JSON)
assert event == raw and raw == event and not (event != raw)
assert event["actor"] == raw["actor"]
assert event == PantherEvent(OKTA_JSON) and event == PantherEvent(raw)
other = dict(raw, eventType="user.session.end")
assert event != other and not (event == other)
assert event != "not a mapping" and event != None
assert event["p_any_emails"] == ["homer@springfield.gov", "marge@springfield.gov"]
assert event["p_any_emails"] == ("homer@springfield.gov", "marge@springfield.gov")
assert ["homer@springfield.gov", "marge@springfield.gov"] == event["p_any_emails"]
assert event["p_any_emails"] != ["homer@springfield.gov"]
assert event["p_any_emails"] != {"homer@springfield.gov", "marge@springfield.gov"}
assert event["target"] == raw["target"] and event["target"] == event["target"]
assert event["target"] != raw["target"][:2]
assert abc.Mapping.__eq__  # the mapping compares by items, like Panther's
class OtherMapping(abc.Mapping):
    def __init__(self, d): self.d = d
    def __getitem__(self, k): return self.d[k]
    def __iter__(self): return iter(self.d)
    def __len__(self): return len(self.d)
assert event["outcome"] == OtherMapping({"result": "SUCCESS", "reason": ""})
)py");
}

TEST(ImmutableListTest, BehavesLikePanthersTupleBackedSequence) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(OktaScope(), R"py(
t = event["target"]
assert len(t) == 3 and t[0]["id"] == "t1" and t[-1]["id"] == "t3"
assert t[1]["alternateId"] == "Okta Admin Console"
e = raises(IndexError, lambda: t[3]); assert str(e) == "tuple index out of range"
raises(IndexError, lambda: t[-4])
raises(TypeError, lambda: t["id"])
assert [x["id"] for x in t] == ["t1", "t2", "t3"]
assert [x["id"] for x in reversed(t)] == ["t3", "t2", "t1"]
emails = event["p_any_emails"]
assert "marge@springfield.gov" in emails and "bart@springfield.gov" not in emails
assert emails.index("marge@springfield.gov") == 1
raises(ValueError, emails.index, "bart@springfield.gov")
raises(ValueError, emails.index, "homer@springfield.gov", 1)
assert emails.index("homer@springfield.gov", -2) == 0
assert t.count({"id": "t2", "type": "AppInstance", "alternateId": "Okta Admin Console"}) == 1
assert PantherEvent('{"l": [1, 2, 1, 1]}')["l"].count(1) == 3
# Panther slices its tuple: a slice is a plain tuple of plain values.
s = t[0:2]
assert type(s) is tuple and s[0]["id"] == "t1" and type(s[0]) is dict
assert emails[::-1] == ("marge@springfield.gov", "homer@springfield.gov")
assert emails[5:] == ()
c = t.copy()
assert type(c) is list and c == t and type(c[0]) is dict and type(c[0]["detailEntry"]) is dict
c[0]["id"] = "changed"; c.append("x")
assert t[0]["id"] == "t1" and len(t) == 3
assert emails.as_list() == ["homer@springfield.gov", "marge@springfield.gov"]
assert ImmutableList([1, [2]]) == [1, [2]] and ImmutableList(x for x in "ab") == ("a", "b")
assert list(iter(emails)) == ["homer@springfield.gov", "marge@springfield.gov"]
it = iter(emails); assert iter(it) is it
assert sorted(PantherEvent('{"l": [3, 1, 2]}')["l"]) == [1, 2, 3]
assert ", ".join(emails) == "homer@springfield.gov, marge@springfield.gov"
assert not PantherEvent('{"l": []}')["l"]
)py");
}

TEST(EventReprTest, ShowsTheTypeNameAndRawContent) {
  py::gil_scoped_acquire gil;
  py::dict scope;
  scope["e"] = MakeEvent(R"({"a": {"B": [1, {"c": null}]}, "l": ["x"]})");
  EXPECT_PYTHON(scope, R"py(
assert repr(e) == "PantherEvent({'a': {'B': [1, {'c': None}]}, 'l': ['x']})", repr(e)
assert repr(e["a"]) == "ImmutableCaseInsensitiveDict({'B': [1, {'c': None}]})", repr(e["a"])
assert repr(e["a"]["b"]) == "ImmutableList((1, {'c': None}))", repr(e["a"]["b"])
assert repr(e["l"]) == "ImmutableList(('x',))"
assert str(e) == repr(e)
)py");
}

TEST(EventDeepGetTest, WalksMappingsAndFallsBackToDefault) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(OktaScope(), R"py(
assert event.deep_get("actor", "alternateId") == "homer@springfield.gov"
assert event.deep_get("ACTOR", "AlternateID") == "homer@springfield.gov"   # case-insensitive
assert event.deep_get("client", "userAgent", "rawUserAgent") == "Mozilla/5.0"
assert event.deep_get("client", "missing") is None
assert event.deep_get("client", "missing", default="d") == "d"
assert event.deep_get("missing", "deeper", "still", default="d") == "d"
assert event.deep_get("actor", "detailEntry", default="d") == "d"       # None -> default
assert event.deep_get("outcome", "reason", default="d") == ""           # falsy kept
assert event.deep_get("securityContext", "asNumber", default="d") == 0
assert event.deep_get("securityContext", "isProxy", default="d") is False
assert event.deep_get("eventType", "x", default="d") == "d"             # not a Mapping
assert event.deep_get("target", "id", default="d") == "d"               # lists are not walked
assert type(event.deep_get("client", "userAgent")) is ImmutableCaseInsensitiveDict
assert type(event.deep_get("target")) is ImmutableList
assert event.deep_get() is event
# A missing hop continues on the default, as Panther's reduce does.
assert event.deep_get("missing", "k", default={"k": "from default"}) == "from default"
assert event.lookup("table", "key") is None
e2 = PantherEvent({"_mocked_lookup_data_": {"table": {"key": {"v": 1}}}})
assert e2.lookup("table", "key") == {"v": 1}
)py");
}

TEST(EventDeepWalkTest, DescendsListsCaseSensitively) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(OktaScope(), R"py(
# Case-SENSITIVE, as Panther's deep_walk reads the raw dict.
assert event.deep_walk("actor", "alternateId") == "homer@springfield.gov"
assert event.deep_walk("actor", "alternateID") is None
assert event.deep_walk("Actor", "alternateId", default="d") == "d"
# Into lists, de-duplicated in order.
assert event.deep_walk("target", "alternateId") == ["marge@springfield.gov", "Okta Admin Console"]
assert event.deep_walk("target", "alternateId", return_val="first") == "marge@springfield.gov"
assert event.deep_walk("target", "alternateId", return_val="last") == "Okta Admin Console"
assert event.deep_walk("target", "type") == ["User", "AppInstance"]
assert event.deep_walk("target", "detailEntry", "methodTypeUsed") == "Password"  # one result
assert event.deep_walk("target", "ALTERNATEID", default="d") == "d"
# Falsy and None leaves.
assert event.deep_walk("outcome", "reason", default="d") == ""
assert event.deep_walk("actor", "detailEntry", default="d") == "d"
# Leaves come back as plain values.
assert type(event.deep_walk("client", "userAgent")) is dict
assert event.deep_walk("p_any_emails") == ["homer@springfield.gov", "marge@springfield.gov"]
assert type(event.deep_walk("p_any_emails")) is list
assert event.deep_walk("p_any_emails", return_val="first") == ["homer@springfield.gov", "marge@springfield.gov"]
e = PantherEvent({
    "empty": [], "nested_empty": [[], [[]]],
    "groups": [{"members": [{"n": "a"}, {"n": "b"}]}, {"members": [{"n": "b"}, {"n": "c"}]},
               {"members": []}, {"other": 1}],
    "tags": [["x", "y"], ["y", "z"]],
    "mixed": [{"k": 1}, {"k": None}, "str", 5, {"k": 1.0}, {"k": True}],
    "dicts": [{"k": {"a": 1}}],
})
assert e.deep_walk("empty", default="d") == "d"
assert e.deep_walk("nested_empty", default="d") == "d"
assert e.deep_walk("groups", "members", "n") == ["a", "b", "c"]
assert e.deep_walk("groups", "members", "n", return_val="first") == "a"
assert e.deep_walk("groups", "members", "n", return_val="last") == "c"
assert e.deep_walk("tags") == [["x", "y"], ["y", "z"]]     # no list crossed: the value as is
assert e.deep_walk("mixed", "k") == 1                      # 1 == 1.0 == True de-duplicate
assert e.deep_walk("mixed", "k", default="d") == [1, "d"]  # Panther keeps defaults found in lists
assert e.deep_walk("groups", "members", "n", return_val="bogus") == "all"  # Panther's quirk
raises(TypeError, e.deep_walk, "dicts", "k")               # dict leaves in lists are unhashable
assert e.deep_walk("missing", default="d") == "d"
assert e.deep_walk(default="d") == e.to_dict()
)py");
}

// A DataModel like panther-analysis' Standard.Okta.SystemLog.
std::shared_ptr<DataModel> OktaModel() {
  auto model = std::make_shared<DataModel>("Standard.Okta.SystemLog");
  EXPECT_TRUE(model->AddPath("source_ip", "$.client.ipAddress").ok());
  EXPECT_TRUE(model->AddPath("user_agent", "$.client.userAgent.rawUserAgent").ok());
  EXPECT_TRUE(model->AddPath("first_target", "$.target[0].alternateId").ok());
  EXPECT_TRUE(model->AddPath("target_ids", "$.target[*].id").ok());
  EXPECT_TRUE(model->AddPath("wrong_case", "$.client.IPADDRESS").ok());
  EXPECT_TRUE(model->AddPath("detail", "actor.detailEntry").ok());
  py::object get_actor_user = py::eval(R"py(lambda event: (
      "called with " + type(event).__name__ + ": " + event["actor"]["alternateID"]))py");
  EXPECT_TRUE(model->AddMethod("actor_user", get_actor_user).ok());
  return model;
}

TEST(EventUdmTest, UsesTheDataModelThenPUdmThenThePlainPath) {
  py::gil_scoped_acquire gil;
  std::shared_ptr<const DataModel> model = OktaModel();
  EXPECT_PYTHON(OktaScope(model), R"py(
assert event.udm("source_ip") == "1.2.3.4"
assert event.udm("user_agent") == "Mozilla/5.0"
assert event.udm("first_target") == "marge@springfield.gov"
# Method mappings get the event as Panther passes it: an ImmutableCaseInsensitiveDict.
assert event.udm("actor_user") == "called with ImmutableCaseInsensitiveDict: homer@springfield.gov"
# Paths are case-sensitive: mapped, nothing matched -> default, no fallback.
assert event.udm("wrong_case") is None and event.udm("wrong_case", default="d") == "d"
# A JSON null that a path matches is returned as None (not the default), as in Panther.
assert event.udm("detail", default="d") is None
e = raises(Exception, event.udm, "target_ids")
assert str(e) == "JSONPath [$.target.[*].id] in DataModel [Standard.Okta.SystemLog], matched multiple fields.", str(e)
# Unmapped: p_udm first, then the event itself (deep_get: case-insensitive).
assert event.udm("user", "email") == "homer@p-udm.example"
assert event.udm("eventType") == "user.session.start"
assert event.udm("ACTOR", "alternateID") == "homer@springfield.gov"
assert event.udm("outcome", "reason", default="d") == "d"       # falsy -> default
assert event.udm("missing", default="d") == "d"
assert event.udm(default="d") == "d"
assert isinstance(event.data_model, DataModel)
assert event.data_model.data_model_id == "Standard.Okta.SystemLog"
)py");
  // Without a model udm() still falls back; udm_path() raises PantherError.
  EXPECT_PYTHON(OktaScope(), R"py(
assert event.data_model is None
assert event.udm("source_ip", default="d") == "d"
assert event.udm("client", "ipAddress") == "1.2.3.4"
e = raises(PantherError, event.udm_path, "source_ip")
assert str(e) == "a data model hasn't been specified for log type: Okta.SystemLog", str(e)
assert isinstance(e, Exception)
)py");
}

TEST(EventUdmTest, UdmPathNamesThePathOrMethod) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(OktaScope(OktaModel()), R"py(
assert event.udm_path("source_ip") == "client.ipAddress"
assert event.udm_path("first_target") == "target.[0].alternateId"
assert event.udm_path("actor_user") == "<lambda>"
assert event.udm_path("unmapped") is None
assert event.udm_path("wrong_case") is None
raises(Exception, event.udm_path, "target_ids")
# p_enrichment keys use this path, as sign_in_from_rogue_state does.
e = PantherEvent({"client": {"ipAddress": "1.2.3.4"},
                  "p_enrichment": {"ipinfo_location": {"client.ipAddress": {"country": "us"}}}},
                 event.data_model)
assert e.deep_get("p_enrichment", "ipinfo_location", e.udm_path("source_ip")) == {"country": "us"}
)py");
}

TEST(DataModelTest, BuildsFromPythonAndRejectsBadMappings) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(OktaScope(), R"py(
def get_type(event):
    return {"t": [event.get("eventType")]}
m = DataModel("Custom.Model", {"ip": "client.ipAddress", "ua": "$['client'][\"userAgent\"].os",
                               "kind": get_type, "all": "$.client.*"})
assert m.data_model_id == "Custom.Model"
assert m.paths == {"ip": "client.ipAddress", "ua": "$['client'][\"userAgent\"].os", "all": "$.client.*"}
assert m.methods == {"kind": get_type}
e = PantherEvent(OKTA_JSON, m)
assert e.udm("ip") == "1.2.3.4" and e.udm("ua") == "Mac OS X"
kind = e.udm("kind")          # dicts/lists from methods come back immutable
assert type(kind) is ImmutableCaseInsensitiveDict and kind["T"] == ["user.session.start"]
assert "matched multiple fields" in str(raises(Exception, e.udm, "all"))
assert "JSONPath [$.client.*] in DataModel [Custom.Model]" in str(raises(Exception, e.udm, "all"))
raises(ValueError, DataModel, "M", {"x": "$..deep"})
raises(ValueError, DataModel, "M", {"x": "$.a[?(@.b)]"})
raises(ValueError, DataModel, "M", {"x": "$.a[-1]"})
raises(ValueError, DataModel, "M", {"x": ""})
raises(TypeError, DataModel, "M", {"x": 42})
raises(TypeError, PantherEvent, "{}", "not a model")
)py");
  DataModel model("M");
  EXPECT_TRUE(model.AddPath("a", "$.a").ok());
  EXPECT_EQ(model.AddPath("a", "$.b").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(model.AddPath("b", "$.a..b").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model.AddMethod("c", py::int_(1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(model.HasMapping("a"));
  EXPECT_FALSE(model.HasMapping("b"));
  EXPECT_EQ(model.PathText("a"), "$.a");
}

TEST(EventTimeTest, EventTimeEpochMatchesDateutil) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(OktaScope(), R"py(
import dateutil.parser
def reference(text, utc=True):
    try:
        return int(dateutil.parser.parse(text + (" UTC" if utc else "")).timestamp())
    except dateutil.parser.ParserError:
        return 0
assert event.event_time_epoch() == 1705328625 == reference("2024-01-15 14:23:45.123")
for text in ["2024-01-15 14:23:45", "2024-01-15 14:23:45.999999999", "1970-01-01 00:00:00",
             "1969-12-31 23:59:59.5", "1900-03-01 00:00:00.000001", "2000-02-29 12:00:00",
             "2024-01-15T14:23:45Z", "2024-01-15T14:23:45.123+02:00", "Jan 15 2024 2pm",
             "2023-02-29 00:00:00", "2024-13-01 00:00:00", "2024-01-15 24:00:00",
             "9999-12-31 23:59:59.999999", "not a time", ""]:
    got = PantherEvent({"p_event_time": text}).event_time_epoch()
    assert got == reference(text), (text, got, reference(text))
assert PantherEvent("{}").event_time_epoch() == 0
assert PantherEvent({"P_EVENT_TIME": "2024-01-15 14:23:45"}).event_time_epoch() == 1705328625
raises(TypeError, PantherEvent({"p_event_time": 5}).event_time_epoch)
naive = PantherEvent({"p_event_time": "2024-01-15 14:23:45"}).event_time_epoch(force_utc=False)
assert naive == reference("2024-01-15 14:23:45", utc=False)
)py");
}

TEST(EventCopyTest, ToDictAndCopyAreDeepMutableAndIndependent) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(OktaScope(), R"py(
raw = json.loads(OKTA_JSON)
for d in (event.to_dict(), event.copy(), event["actor"].copy()):
    assert type(d) is dict
d = event.to_dict()
assert d == raw and type(d["target"]) is list and type(d["target"][0]) is dict
d["eventType"] = "changed"; d["target"][0]["id"] = "changed"; d["target"].append(1)
assert event["eventType"] == "user.session.start" and event["target"][0]["id"] == "t1"
d2 = event.copy()
assert d2 == raw and d2 is not d and d2["eventType"] == "user.session.start"
assert copy.copy(event) is event and copy.deepcopy(event) is event
assert copy.deepcopy({"e": event})["e"] == raw
)py");
}

TEST(EventJsonTest, JsonEncoderUnwrapsEventsAndLists) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(OktaScope(), R"py(
raw = json.loads(OKTA_JSON)
context = {"event": event, "targets": event["target"], "actor": event["actor"], "n": 1}
text = json.dumps(context, default=PantherEvent.json_encoder)
assert json.loads(text) == {"event": raw, "targets": raw["target"], "actor": raw["actor"], "n": 1}
assert json.loads(json.dumps(event, default=json_encoder)) == raw
assert json.loads(json.dumps(event, default=event.json_encoder)) == raw
e = raises(TypeError, json.dumps, {"s": {1}}, default=PantherEvent.json_encoder)
assert "object of type <class 'set'> is not JSON serializable" in str(e), e
raises(TypeError, json.dumps, event)      # without the encoder, as in Panther
)py");
}

TEST(EventValuesTest, UnicodeKeysAndValues) {
  py::gil_scoped_acquire gil;
  py::dict scope;
  scope["e"] = MakeEvent(
      R"({"ключ": "значение", "Ünïcode": "ü €", "\u212Aelvin": 1, "emoji": "🐼", "nul": "a\u0000b",
          "ΣΊΣΥΦΟΣ": "greek"})");
  EXPECT_PYTHON(scope, R"py(
assert e["ключ"] == "значение" and e["КЛЮЧ"] == "значение"
assert e["ünïcode"] == "ü €" and e["ÜNÏCODE"] == "ü €"
assert e["kelvin"] == 1                    # "\u212A".lower() == "k", as Python has it
assert e["emoji"] == "🐼" and len(e["emoji"]) == 1
assert e["nul"] == "a\x00b"
# Python's lower() (so Panther's lookup) knows final sigma: "ΣΊΣΥΦΟΣ".lower() == "σίσυφος".
assert e["σίσυφος"] == "greek" and e["ΣΊΣΥΦΟΣ"] == "greek" and e["Σίσυφος"] == "greek"
raises(KeyError, lambda: e["σίσυφοσ"])
assert list(e.keys())[0] == "ключ"
assert PantherEvent({"ключ": "é"})["КЛЮЧ"] == "é"
)py");
}

TEST(EventValuesTest, NumbersNullsAndBooleansMatchJsonLoads) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(py::dict(), R"py(
text = ('{"int": 42, "neg": -7, "zero": -0, "i64min": -9223372036854775808,'
        ' "u64max": 18446744073709551615, "big": 123456789012345678901234567890,'
        ' "bigneg": -98765432109876543210, "float": 1.5, "exp": 1E2, "tiny": 1e-400,'
        ' "huge": 1e400, "neghuge": -1e400, "t": true, "f": false, "null": null,'
        ' "list": [18446744073709551616, 1.0, null], "nested": {"n": 2e308}}')
e = PantherEvent(text)
raw = json.loads(text)
assert e.to_dict() == raw and e == raw
for k, v in raw.items():
    if not isinstance(v, (dict, list)):
        assert type(e[k]) is type(v) and e[k] == v, (k, e[k], v)
assert e["big"] == 123456789012345678901234567890 and type(e["big"]) is int
assert e["u64max"] == 2**64 - 1 and e["i64min"] == -2**63
assert e["huge"] == math.inf and e["neghuge"] == -math.inf and e["tiny"] == 0.0
assert e["list"][0] == 2**64 and e["nested"]["n"] == math.inf
assert e["null"] is None and e.get("null", "d") is None
assert e["t"] is True and e["f"] is False
assert e["exp"] == 100.0 and type(e["exp"]) is float
special = PantherEvent('{"nan": NaN, "inf": Infinity, "ninf": -Infinity, "l": [NaN]}')
assert math.isnan(special["nan"]) and special["inf"] == math.inf and special["ninf"] == -math.inf
assert math.isnan(special["l"][0])
assert json.dumps(e, default=json_encoder) == json.dumps(raw)
)py");
}

TEST(EventValuesTest, RepeatedKeysFollowJsonLoads) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(py::dict(), R"py(
text = '{"a": 1, "b": 2, "a": 3, "A": 4, "n": {"x": 1, "x": {"y": 2}}}'
e = PantherEvent(text)
raw = json.loads(text)
assert e == raw and e.to_dict() == raw
assert list(e) == ["a", "b", "A", "n"] and len(e) == 4
assert e["a"] == 3 and e["A"] == 4 and e["n"]["X"]["Y"] == 2
assert e.deep_walk("a") == 3 and e.deep_get("n", "x", "y") == 2
many = "{" + ", ".join(f'"k{i % 40}": {i}' for i in range(100)) + "}"
assert PantherEvent(many) == json.loads(many) and len(PantherEvent(many)) == 40
)py");
}

TEST(EventConstructionTest, FromPythonValuesAndOtherEvents) {
  py::gil_scoped_acquire gil;
  EXPECT_PYTHON(OktaScope(), R"py(
raw = json.loads(OKTA_JSON)
assert PantherEvent(raw) == raw
assert PantherEvent(OKTA_JSON.encode()) == raw
assert PantherEvent(event) == raw and PantherEvent(event["actor"])["id"] == "00uu1uuuuIlllaaaa356"
assert PantherEvent({"nested": event["actor"], "l": event["target"]})["nested"] == raw["actor"]
assert ImmutableCaseInsensitiveDict({"A": 1})["a"] == 1
raises(ValueError, ImmutableCaseInsensitiveDict, "[]")
raises(TypeError, ImmutableCaseInsensitiveDict, 1)
m = DataModel("X", {"ip": "$.client.ipAddress"})
assert PantherEvent(raw, m).udm("ip") == "1.2.3.4"
assert PantherEvent(raw, data_model=m).udm("ip") == "1.2.3.4"
)py");
}

TEST(EventLifetimeTest, ViewsKeepTheDocumentAlive) {
  py::gil_scoped_acquire gil;
  py::object nested;
  py::object list;
  {
    py::object event = MakeEvent(kOktaEvent);
    nested = event["actor"];
    list = event["target"];
  }  // The event and every C++ reference to its document are gone.
  py::dict scope;
  scope["actor"] = nested;
  scope["targets"] = list;
  EXPECT_PYTHON(scope, R"py(
import gc; gc.collect()
assert actor["alternateId"] == "homer@springfield.gov"
assert [t["id"] for t in targets] == ["t1", "t2", "t3"]
it = iter(targets); del targets; gc.collect()
assert next(it)["id"] == "t1"
)py");
}

}  // namespace
}  // namespace pantherd::engine
