// File: engine/python_runtime_test.cc
//
// Tests of PythonRuntime: interpreter setup, loading rule sets (globals, data
// models, rules, diagnostics, reloads), the caching module and the time
// limit. The runtime is one per process, so one gtest Environment owns it for
// the whole test binary (this file, rule_runner_test.cc, test_runner_test.cc);
// the helpers of namespace `runtime_testing` below are shared by the three.

#include "engine/python_runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/analysis_spec.h"
#include "engine/event.h"
#include "engine/kv_memory.h"
#include "engine/rule_runner.h"
#include "engine/test_runner.h"

namespace pantherd::engine {
namespace runtime_testing {

namespace py = pybind11;

// A KvBackend that forwards to a KvMemory, or fails every call on demand.
class SwitchableKv : public KvBackend {
 public:
  absl::StatusOr<internal::KvReply> Call(const internal::KvCall& call) override {
    if (fail) return absl::UnavailableError("store is down");
    return memory.Call(call);
  }
  KvMemory memory;
  bool fail = false;
};

namespace {

SwitchableKv* g_kv = nullptr;
PythonRuntime* g_runtime = nullptr;

class RuntimeEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    kv_ = std::make_unique<SwitchableKv>();
    absl::StatusOr<std::unique_ptr<PythonRuntime>> runtime = PythonRuntime::Create(kv_.get());
    ASSERT_TRUE(runtime.ok()) << runtime.status();
    runtime_ = std::move(*runtime);
    g_kv = kv_.get();
    g_runtime = runtime_.get();
  }
  void TearDown() override {
    g_runtime = nullptr;
    runtime_.reset();
    g_kv = nullptr;
    kv_.reset();
  }

 private:
  std::unique_ptr<SwitchableKv> kv_;
  std::unique_ptr<PythonRuntime> runtime_;
};

::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new RuntimeEnvironment);

}  // namespace

PythonRuntime& Runtime() { return *g_runtime; }
SwitchableKv& Kv() { return *g_kv; }

v1::AnalysisFile File(const std::string& path, const std::string& content) {
  v1::AnalysisFile f;
  f.set_path(path);
  f.set_content(content);
  return f;
}

std::string RuleYaml(const std::string& id, const std::string& filename,
                     const std::string& extra = "") {
  return absl::StrCat("AnalysisType: rule\nRuleID: ", id, "\nFilename: ", filename,
                      "\nEnabled: true\nLogTypes:\n  - Okta.SystemLog\nSeverity: Medium\n", extra);
}

std::string GlobalYaml(const std::string& id, const std::string& filename) {
  return absl::StrCat("AnalysisType: global\nGlobalID: ", id, "\nFilename: ", filename, "\n");
}

std::string Dump(const std::vector<v1::Diagnostic>& diagnostics) {
  std::string out;
  for (const v1::Diagnostic& d : diagnostics) {
    absl::StrAppend(&out, d.file(), ":", d.line(), " [", d.field(), "] ", d.message(), "\n");
  }
  return out;
}

absl::Status Load(const std::vector<v1::AnalysisFile>& files,
                  std::vector<v1::Diagnostic>* diagnostics) {
  std::vector<v1::Diagnostic> spec_diagnostics;
  absl::StatusOr<AnalysisSet> set = LoadAnalysisFiles(files, &spec_diagnostics);
  EXPECT_TRUE(set.ok()) << set.status() << "\n" << Dump(spec_diagnostics);
  if (!set.ok()) return set.status();
  return Runtime().LoadRuleSet(*set, diagnostics);
}

void LoadOk(const std::vector<v1::AnalysisFile>& files) {
  std::vector<v1::Diagnostic> diagnostics;
  absl::Status s = Load(files, &diagnostics);
  ASSERT_TRUE(s.ok()) << s << "\n" << Dump(diagnostics);
}

const LoadedRule& Rule(const std::string& id) {
  const LoadedRule* rule = Runtime().loaded_set()->FindRule(id);
  if (rule == nullptr) {
    ADD_FAILURE() << "no loaded rule " << id;
    static LoadedRule* none = new LoadedRule;
    return *none;
  }
  return *rule;
}

py::object Event(const std::string& json) {
  absl::StatusOr<std::shared_ptr<const EventDocument>> doc = ParseEvent(json);
  EXPECT_TRUE(doc.ok()) << doc.status();
  std::shared_ptr<const DataModel> model;
  if (std::optional<std::string_view> lt = FindTopLevelString(**doc, "p_log_type")) {
    model = Runtime().loaded_set()->DataModelFor(absl::string_view(lt->data(), lt->size()));
  }
  return MakePantherEvent(*doc, model);
}

RuleOutcome RunOn(const std::string& rule_id, const std::string& event_json, RunMode mode) {
  return RunRule(Runtime(), Rule(rule_id), Event(event_json), mode);
}

// Loads one rule `id` with the Python `source` (plus `extra` YAML).
void LoadRule(const std::string& id, const std::string& source, const std::string& extra) {
  LoadOk({File("rules/r.yml", RuleYaml(id, "r.py", extra)), File("rules/r.py", source)});
}

}  // namespace runtime_testing

namespace {

using runtime_testing::File;
using runtime_testing::GlobalYaml;
using runtime_testing::Kv;
using runtime_testing::Load;
using runtime_testing::LoadOk;
using runtime_testing::LoadRule;
using runtime_testing::Rule;
using runtime_testing::RuleYaml;
using runtime_testing::RunOn;
using runtime_testing::Runtime;
using ::testing::HasSubstr;
using ::testing::StartsWith;
namespace py = pybind11;

constexpr char kEvent[] = R"({"eventType": "user.session.start", "p_log_type": "Okta.SystemLog",
  "actor": {"alternateId": "homer@springfield.gov"}, "client": {"ipAddress": "1.2.3.4"}})";

TEST(PythonRuntimeTest, OnePerProcess) {
  absl::StatusOr<std::unique_ptr<PythonRuntime>> second = PythonRuntime::Create(nullptr);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(PythonRuntimeTest, EmbedsCPython311WithDebianPackages) {
  py::module_ sys = py::module_::import("sys");
  py::tuple v = sys.attr("version_info");
  EXPECT_EQ(v[0].cast<int>(), 3);
  EXPECT_EQ(v[1].cast<int>(), 11);
  EXPECT_EQ(py::str(sys.attr("implementation").attr("name")).cast<std::string>(), "cpython");
  // python3-dateutil, which Panther's helpers import, comes from Debian.
  EXPECT_NO_THROW(py::module_::import("dateutil.parser"));
}

TEST(PythonRuntimeTest, GlobalsImportEachOtherInAnyOrderAndRulesImportThem) {
  LoadOk({
      File("global_helpers/a_helpers.yml", GlobalYaml("a_helpers", "a_helpers.py")),
      File("global_helpers/a_helpers.py",
           "from z_helpers import BASE\n\ndef greet(name):\n    return f'{BASE} {name}'\n"),
      File("global_helpers/z_helpers.yml", GlobalYaml("z_helpers", "z_helpers.py")),
      File("global_helpers/z_helpers.py", "BASE = 'hello'\n"),
      File("rules/r.yml", RuleYaml("Test.Globals", "r.py", "DisplayName: Greeter\n")),
      File("rules/r.py",
           "from a_helpers import greet\nimport z_helpers\n\n"
           "def rule(event):\n    return z_helpers.BASE == 'hello'\n\n"
           "def title(event):\n    return greet(event['actor']['alternateID'])\n"),
  });
  RuleOutcome out = RunOn("Test.Globals", kEvent, RunMode::kLive);
  EXPECT_TRUE(out.matched);
  EXPECT_EQ(out.alert.title, "hello homer@springfield.gov");
  // Globals are modules named by GlobalID; rule modules are not in sys.modules.
  py::dict modules = py::module_::import("sys").attr("modules");
  EXPECT_TRUE(modules.contains("a_helpers"));
  EXPECT_FALSE(modules.contains("Test.Globals"));
  EXPECT_EQ(py::str(Rule("Test.Globals").module.attr("__name__")).cast<std::string>(),
            "Test.Globals");
}

TEST(PythonRuntimeTest, UserGlobalReplacesAnotherWithTheSameIdOnReload) {
  auto set = [](const std::string& helper_source) {
    return std::vector<v1::AnalysisFile>{
        File("global_helpers/panther_base_helpers.yml",
             GlobalYaml("panther_base_helpers", "panther_base_helpers.py")),
        File("global_helpers/panther_base_helpers.py", helper_source),
        File("rules/r.yml", RuleYaml("Test.Replace", "r.py")),
        File("rules/r.py",
             "from panther_base_helpers import VERSION\n\n"
             "def rule(event):\n    return True\n\n"
             "def title(event):\n    return VERSION\n"),
    };
  };
  LoadOk(set("VERSION = 'bundled'\n"));
  EXPECT_EQ(RunOn("Test.Replace", kEvent, RunMode::kLive).alert.title, "bundled");
  LoadOk(set("VERSION = 'user'\n"));
  EXPECT_EQ(RunOn("Test.Replace", kEvent, RunMode::kLive).alert.title, "user");

  // A set without the global: the old module is gone from sys.modules.
  std::vector<v1::Diagnostic> diagnostics;
  absl::Status s = Load({File("rules/r.yml", RuleYaml("Test.Replace", "r.py")),
                         File("rules/r.py",
                              "import panther_base_helpers\n\n"
                              "def rule(event):\n    return True\n")},
                        &diagnostics);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(diagnostics.size(), 1u) << runtime_testing::Dump(diagnostics);
  EXPECT_EQ(diagnostics[0].file(), "rules/r.py");
  EXPECT_EQ(diagnostics[0].line(), 1);
  EXPECT_EQ(diagnostics[0].message(),
            "rule Test.Replace: ModuleNotFoundError: No module named 'panther_base_helpers': "
            "upload the global helper named panther_base_helpers");
  EXPECT_EQ(Runtime().loaded_set()->FindRule("Test.Replace"), nullptr);
}

// Rules and helpers (panther-analysis' panther_type_hints global, ~20 public
// rules) import Panther's runtime package for type hints and isinstance.
TEST(PythonRuntimeTest, PantherCoreTypesAreImportable) {
  constexpr char kHints[] =
      "from panther_core import PantherEvent\n"
      "from panther_core.immutable import ImmutableCaseInsensitiveDict, ImmutableList\n";
  LoadOk({
      File("global_helpers/hints.yml", GlobalYaml("hints", "hints.py")),
      File("global_helpers/hints.py", kHints),
      File("rules/r.yml", RuleYaml("Test.Core", "r.py")),
      File("rules/r.py",
           "from hints import PantherEvent, ImmutableCaseInsensitiveDict, ImmutableList\n"
           "import panther_core\n"
           "from panther_core.enriched_event import PantherEvent as Enriched\n"
           "from panther_core.exceptions import PantherError\n"
           "from panther_core.data_model import DataModel\n\n"
           "def rule(event: PantherEvent) -> bool:\n"
           "    return (isinstance(event, PantherEvent) and Enriched is PantherEvent\n"
           "            and panther_core.PantherEvent is PantherEvent\n"
           "            and panther_core.immutable.ImmutableList is ImmutableList\n"
           "            and isinstance(event['actor'], ImmutableCaseInsensitiveDict)\n"
           "            and isinstance(event['target'], ImmutableList)\n"
           "            and issubclass(PantherError, Exception) and DataModel is not None)\n\n"
           "def title(event):\n"
           "    import panther_core.rule\n"),
  });
  RuleOutcome out = RunOn("Test.Core", R"({"actor": {"id": "1"}, "target": [1]})", RunMode::kTest);
  const FunctionOutcome& rule = out.function(RuleFunction::kRule);
  ASSERT_FALSE(rule.error.has_value()) << rule.error->message();
  EXPECT_TRUE(out.matched);
  // Only the names pantherd provides exist.
  const FunctionOutcome& title = out.function(RuleFunction::kTitle);
  ASSERT_TRUE(title.error.has_value());
  EXPECT_EQ(title.error->type(), "ModuleNotFoundError");

  // A global of that name replaces the package and hides its submodules; a
  // later set without it gets ours back.
  std::vector<v1::Diagnostic> diagnostics;
  absl::Status s = Load({File("global_helpers/c.yml", GlobalYaml("panther_core", "c.py")),
                         File("global_helpers/c.py", "PantherEvent = 'user'\n"),
                         File("global_helpers/hints.yml", GlobalYaml("hints", "hints.py")),
                         File("global_helpers/hints.py", kHints)},
                        &diagnostics);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(diagnostics.size(), 1u) << runtime_testing::Dump(diagnostics);
  EXPECT_EQ(diagnostics[0].file(), "global_helpers/hints.py");
  EXPECT_EQ(diagnostics[0].line(), 2);
  EXPECT_THAT(diagnostics[0].message(), StartsWith("global hints: ModuleNotFoundError"));
  py::module_ sys = py::module_::import("sys");
  EXPECT_EQ(py::str(sys.attr("modules")["panther_core"].attr("PantherEvent")).cast<std::string>(),
            "user");
  LoadOk({File("global_helpers/hints.yml", GlobalYaml("hints", "hints.py")),
          File("global_helpers/hints.py", kHints)});
}

TEST(PythonRuntimeTest, SyntaxErrorIsADiagnosticWithFileAndLine) {
  std::vector<v1::Diagnostic> diagnostics;
  absl::Status s = Load({File("rules/bad.yml", RuleYaml("Test.Bad", "bad.py")),
                         File("rules/bad.py", "def rule(event):\n    x = 1\n    return (x\n\n"),
                         File("rules/good.yml", RuleYaml("Test.Good", "good.py")),
                         File("rules/good.py", "def rule(event):\n    return False\n")},
                        &diagnostics);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("rules/bad.py line 3"));
  ASSERT_EQ(diagnostics.size(), 1u) << runtime_testing::Dump(diagnostics);
  EXPECT_EQ(diagnostics[0].file(), "rules/bad.py");
  EXPECT_EQ(diagnostics[0].line(), 3);
  EXPECT_THAT(diagnostics[0].message(), StartsWith("rule Test.Bad: SyntaxError: "));
  // The rest of the set is loaded.
  EXPECT_NE(Runtime().loaded_set()->FindRule("Test.Good"), nullptr);
  EXPECT_EQ(Runtime().loaded_set()->FindRule("Test.Bad"), nullptr);
  ASSERT_EQ(Runtime().loaded_set()->invalid.size(), 1u);
}

TEST(PythonRuntimeTest, ImportErrorsNameTheLineAndWhereTheyHappened) {
  std::vector<v1::Diagnostic> diagnostics;
  absl::Status s =
      Load({File("global_helpers/broken.yml", GlobalYaml("broken_helpers", "broken.py")),
            File("global_helpers/broken.py", "X = 1\nY = {}['missing']\n"),
            File("rules/uses.yml", RuleYaml("Test.Uses", "uses.py")),
            File("rules/uses.py",
                 "import json\nfrom broken_helpers import X\n\n"
                 "def rule(event):\n    return True\n"),
            File("rules/raises.yml", RuleYaml("Test.Raises", "raises.py")),
            File("rules/raises.py", "A = 1\nB = A / 0\n\ndef rule(event):\n    return True\n"),
            File("rules/norule.yml", RuleYaml("Test.NoRule", "norule.py")),
            File("rules/norule.py", "def title(event):\n    return 'x'\n")},
           &diagnostics);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  std::string dump = runtime_testing::Dump(diagnostics);
  // The rule that fails only because it imports the broken global is named
  // in the global's diagnostic, not reported again.
  ASSERT_EQ(diagnostics.size(), 3u) << dump;
  EXPECT_EQ(diagnostics[0].file(), "global_helpers/broken.py") << dump;
  EXPECT_EQ(diagnostics[0].line(), 2);
  EXPECT_EQ(diagnostics[0].message(),
            "global broken_helpers: KeyError: 'missing' (so 1 item importing it did not load "
            "either: rule Test.Uses)");
  EXPECT_EQ(diagnostics[1].file(), "rules/norule.py") << dump;
  EXPECT_EQ(diagnostics[1].message(), "rule needs to have a method named 'rule'");
  EXPECT_EQ(diagnostics[2].file(), "rules/raises.py") << dump;
  EXPECT_EQ(diagnostics[2].line(), 2);
  EXPECT_EQ(diagnostics[2].message(), "rule Test.Raises: ZeroDivisionError: division by zero");
  EXPECT_TRUE(Runtime().loaded_set()->rules.empty());
}

// A module the runtime cannot import is reported per item with a hint; a
// broken global once, with every item (rule, global, data model) that
// failed only because it imports it; everything else loads.
TEST(PythonRuntimeTest, MissingModulesAreReportedPerItemWithAHint) {
  std::vector<v1::Diagnostic> diagnostics;
  absl::Status s = Load(
      {File("global_helpers/vendor.yml", GlobalYaml("vendor_helpers", "vendor.py")),
       File("global_helpers/vendor.py", "# Vendor SDK.\n\nimport acme_vendor_sdk.client\n"),
       File("global_helpers/wraps.yml", GlobalYaml("wraps_vendor", "wraps.py")),
       File("global_helpers/wraps.py", "from vendor_helpers import *\n"),
       File("global_helpers/ok.yml", GlobalYaml("ok_helpers", "ok.py")),
       File("global_helpers/ok.py", "OK = True\n"),
       File("data_models/dm.yml",
            "AnalysisType: datamodel\nDataModelID: Test.DM\nEnabled: true\n"
            "LogTypes: [Test.Log]\nFilename: dm.py\nMappings:\n  - Name: x\n    Method: get_x\n"),
       File("data_models/dm.py", "import vendor_helpers\n\ndef get_x(event):\n    return 1\n"),
       File("rules/a.yml", RuleYaml("Test.A", "a.py")),
       File("rules/a.py",
            "from vendor_helpers import lookup\n\ndef rule(event):\n    return True\n"),
       File("rules/b.yml", RuleYaml("Test.B", "b.py")),
       File("rules/b.py", "import wraps_vendor\n\ndef rule(event):\n    return True\n"),
       File("rules/geo.yml", RuleYaml("Test.Geo", "geo.py")),
       File("rules/geo.py", "import os\nimport acme_geoip\n\ndef rule(event):\n    return True\n"),
       File("rules/policy.yml", RuleYaml("Test.Policy", "policy.py")),
       File("rules/policy.py", "import policyuniverse\n\ndef rule(event):\n    return True\n"),
       File("rules/fine.yml", RuleYaml("Test.Fine", "fine.py")),
       File("rules/fine.py", "from ok_helpers import OK\n\ndef rule(event):\n    return OK\n")},
      &diagnostics);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  const std::string dump = runtime_testing::Dump(diagnostics);
  ASSERT_EQ(diagnostics.size(), 3u) << dump;
  EXPECT_EQ(diagnostics[0].file(), "global_helpers/vendor.py");
  EXPECT_EQ(diagnostics[0].line(), 3);
  EXPECT_EQ(diagnostics[0].message(),
            "global vendor_helpers: ModuleNotFoundError: No module named 'acme_vendor_sdk': "
            "install the Debian package python3-acme-vendor-sdk if there is one, or upload a "
            "global helper named acme_vendor_sdk (so 4 items importing it did not load either: "
            "global wraps_vendor, datamodel Test.DM, rule Test.A, rule Test.B)");
  EXPECT_EQ(diagnostics[1].file(), "rules/geo.py");
  EXPECT_EQ(diagnostics[1].line(), 2);
  EXPECT_EQ(diagnostics[1].message(),
            "rule Test.Geo: ModuleNotFoundError: No module named 'acme_geoip': install the Debian "
            "package python3-acme-geoip if there is one, or upload a global helper named "
            "acme_geoip");
  EXPECT_EQ(diagnostics[2].file(), "rules/policy.py");
  EXPECT_EQ(diagnostics[2].message(),
            "rule Test.Policy: ModuleNotFoundError: No module named 'policyuniverse': Debian 12 "
            "has no package of it; upload a global helper named policyuniverse");
  ASSERT_EQ(Runtime().loaded_set()->rules.size(), 1u);
  EXPECT_EQ(Runtime().loaded_set()->rules[0].id(), "Test.Fine");

  // Asked for by id, a rule that failed to load is not reported again; an id
  // the set never had is.
  RunTestsOptions options;
  options.rule_ids = {"Test.A", "Test.Geo", "Test.Fine", "Test.Unknown"};
  v1::TestReport report = RunTests(Runtime(), *Runtime().loaded_set(), options);
  ASSERT_EQ(report.rules_size(), 1);
  EXPECT_EQ(report.rules(0).rule_id(), "Test.Fine");
  ASSERT_EQ(report.invalid_size(), 4) << report.DebugString();
  EXPECT_EQ(report.invalid(3).message(), "no rule [Test.Unknown] in the loaded set");
}

TEST(PythonRuntimeTest, TracebacksNameTheUploadedFileLineAndCode) {
  LoadRule("Test.Trace",
           "def rule(event):\n    return helper(event)\n\n"
           "def helper(event):\n    return event['nope'] == 1\n",
           "");
  RuleOutcome out = RunOn("Test.Trace", kEvent, RunMode::kLive);
  ASSERT_TRUE(out.rule_error());
  const v1::RuleError& error = *out.function(RuleFunction::kRule).error;
  EXPECT_EQ(error.type(), "KeyError");
  EXPECT_EQ(error.message(), "'nope'");
  EXPECT_THAT(error.traceback(), HasSubstr("File \"rules/r.py\", line 2, in rule"));
  EXPECT_THAT(error.traceback(), HasSubstr("File \"rules/r.py\", line 5, in helper\n"
                                           "    return event['nope'] == 1"));
}

TEST(PythonRuntimeTest, DataModelsMapPathsAndMethods) {
  LoadOk({
      File("data_models/okta.yml",
           "AnalysisType: datamodel\nDataModelID: Standard.Okta.SystemLog\nEnabled: true\n"
           "Filename: okta.py\nLogTypes:\n  - Okta.SystemLog\nMappings:\n"
           "  - Name: source_ip\n    Path: $.client.ipAddress\n"
           "  - Name: actor_user\n    Method: get_actor_user\n"),
      File("data_models/okta.py",
           "def get_actor_user(event):\n    return event['actor']['alternateId'].upper()\n"),
      File("data_models/off.yml",
           "AnalysisType: datamodel\nDataModelID: Off\nEnabled: false\n"
           "LogTypes:\n  - Other.Log\nMappings:\n  - Name: source_ip\n    Path: $.x\n"),
      File("rules/r.yml", RuleYaml("Test.Udm", "r.py")),
      File("rules/r.py",
           "def rule(event):\n    return event.udm('source_ip') == '1.2.3.4'\n\n"
           "def title(event):\n    return event.udm('actor_user')\n"),
  });
  EXPECT_NE(Runtime().loaded_set()->DataModelFor("Okta.SystemLog"), nullptr);
  EXPECT_EQ(Runtime().loaded_set()->DataModelFor("Other.Log"), nullptr);
  RuleOutcome out = RunOn("Test.Udm", kEvent, RunMode::kLive);
  EXPECT_TRUE(out.matched);
  EXPECT_EQ(out.alert.title, "HOMER@SPRINGFIELD.GOV");

  std::vector<v1::Diagnostic> diagnostics;
  absl::Status s =
      Load({File("data_models/okta.yml",
                 "AnalysisType: datamodel\nDataModelID: M\nEnabled: true\nFilename: okta.py\n"
                 "LogTypes:\n  - Okta.SystemLog\nMappings:\n  - Name: actor_user\n"
                 "    Method: get_nobody\n"),
            File("data_models/okta.py", "def get_actor_user(event):\n    return 'x'\n")},
           &diagnostics);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_EQ(diagnostics[0].file(), "data_models/okta.yml");
  EXPECT_EQ(diagnostics[0].field(), "Mappings[0].Method");
  EXPECT_THAT(diagnostics[0].message(), HasSubstr("get_nobody"));
}

TEST(PythonRuntimeTest, CachingModuleGoesThroughTheKvBackend) {
  Kv().memory.Clear();
  LoadRule("Test.Cache", R"py(
from panther_detection_helpers.caching import (add_to_string_set, get_counter, get_dictionary,
    get_string_set, increment_counter, put_dictionary, put_string_set, remove_from_string_set,
    reset_counter, reset_string_set, set_key_expiration, evaluate_threshold)
import panther_detection_helpers.caching as caching

RESULTS = {}

def rule(event):
    RESULTS.clear()
    RESULTS["c1"] = increment_counter("count", 2)
    RESULTS["c2"] = increment_counter("count")
    RESULTS["c3"] = get_counter("count")
    reset_counter("count")
    RESULTS["c4"] = get_counter("count")
    RESULTS["missing"] = get_string_set("nothing")
    put_string_set("s", ["b", "a"], epoch_seconds=3600)
    RESULTS["s1"] = add_to_string_set("s", "c")
    RESULTS["s2"] = add_to_string_set("s", ["d", "a"])
    RESULTS["s3"] = remove_from_string_set("s", "a")
    RESULTS["s4"] = get_string_set("s")
    reset_string_set("s")
    RESULTS["s5"] = get_string_set("s")
    put_dictionary("d", {"k": [1, 2]})
    RESULTS["d1"] = get_dictionary("d")
    RESULTS["d2"] = get_dictionary("none")
    set_key_expiration("d", 1000000000)  # long past: expired
    RESULTS["d3"] = get_dictionary("d")
    RESULTS["t"] = [evaluate_threshold("th", threshold=2) for _ in range(3)]
    try:
        put_dictionary("bad", {"x": {1, 2}})
    except ValueError as err:
        RESULTS["err"] = str(err)
    return caching is not None

def alert_context(event):
    return {k: sorted(v) if isinstance(v, set) else v for k, v in RESULTS.items()}
)py",
           "");
  RuleOutcome out = RunOn("Test.Cache", kEvent, RunMode::kLive);
  ASSERT_TRUE(out.matched) << out.function(RuleFunction::kRule).error->DebugString();
  EXPECT_EQ(out.alert.alert_context_json,
            R"({"c1": 2, "c2": 3, "c3": 3, "c4": 0, "missing": [], "s1": ["a", "b", "c"], )"
            R"("s2": ["a", "b", "c", "d"], "s3": ["b", "c", "d"], "s4": ["b", "c", "d"], )"
            R"("s5": [], "d1": {"k": [1, 2]}, "d2": {}, "d3": {}, "t": [false, true, false], )"
            R"("err": "panther_oss_helpers.put_dictionary: value is a dictionary, but it is )"
            R"(not JSON serializable"})");
  EXPECT_GT(Kv().memory.calls(), 15);
}

TEST(PythonRuntimeTest, KvBackendErrorsRaiseInTheRule) {
  LoadRule("Test.CacheDown",
           "from panther_detection_helpers.caching import get_counter\n\n"
           "def rule(event):\n    return get_counter('x') > 0\n",
           "");
  Kv().fail = true;
  RuleOutcome out = RunOn("Test.CacheDown", kEvent, RunMode::kLive);
  Kv().fail = false;
  ASSERT_TRUE(out.rule_error());
  EXPECT_EQ(out.function(RuleFunction::kRule).error->type(), "RuntimeError");
  EXPECT_THAT(out.function(RuleFunction::kRule).error->message(), HasSubstr("store is down"));
}

class TimeLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = Runtime().time_limit();
    Runtime().set_time_limit(absl::Seconds(1));
  }
  void TearDown() override { Runtime().set_time_limit(saved_); }

  // Runs `id`'s rule() and checks it stopped with a TimeoutError within ~the limit.
  void ExpectStopsInTime(const std::string& id) {
    const int64_t before = Runtime().timeouts();
    const absl::Time start = absl::Now();
    RuleOutcome out = RunOn(id, kEvent, RunMode::kLive);
    const absl::Duration took = absl::Now() - start;
    EXPECT_GE(took, absl::Milliseconds(900));
    EXPECT_LT(took, absl::Milliseconds(3500));
    EXPECT_TRUE(out.timed_out);
    ASSERT_TRUE(out.rule_error());
    EXPECT_EQ(out.function(RuleFunction::kRule).error->type(), "TimeoutError");
    EXPECT_EQ(out.function(RuleFunction::kRule).error->message(),
              "rule function [rule] exceeded the time limit of 1s");
    EXPECT_EQ(Runtime().timeouts(), before + 1);
    EXPECT_EQ(Runtime().call_deadline_unix_nanos(), INT64_MAX);
  }

  absl::Duration saved_;
};

TEST_F(TimeLimitTest, BusyLoopStops) {
  LoadRule("Test.Loop", "def rule(event):\n    while True:\n        pass\n", "");
  ExpectStopsInTime("Test.Loop");
  // The traceback shows where the rule was interrupted.
  RuleOutcome again = RunOn("Test.Loop", kEvent, RunMode::kLive);
  EXPECT_THAT(again.function(RuleFunction::kRule).error->traceback(),
              HasSubstr("File \"rules/r.py\", line"));
}

TEST_F(TimeLimitTest, SleepStops) {
  LoadRule("Test.Sleep", "import time\n\ndef rule(event):\n    time.sleep(100)\n    return True\n",
           "");
  ExpectStopsInTime("Test.Sleep");
}

TEST_F(TimeLimitTest, SwallowedTimeoutStillCounts) {
  LoadRule("Test.Swallow",
           "def rule(event):\n    try:\n        while True:\n            pass\n"
           "    except TimeoutError:\n        return True\n",
           "");
  ExpectStopsInTime("Test.Swallow");
}

TEST_F(TimeLimitTest, RulesCannotTurnTheLimitOffBetweenCalls) {
  LoadRule("Test.NoAlarm",
           "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n\n"
           "def rule(event):\n    while True:\n        pass\n",
           "");
  ExpectStopsInTime("Test.NoAlarm");
}

TEST_F(TimeLimitTest, RulesCannotTakeTheAlarmInsideACall) {
  // Through either module, from inside rule(); other signals still work.
  LoadRule("Test.TakeAlarm",
           "import signal, _signal\n\n"
           "def rule(event):\n"
           "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
           "    _signal.signal(signal.SIGALRM, lambda *a: None)\n"
           "    signal.signal(signal.SIGUSR1, signal.SIG_IGN)\n"
           "    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN\n"
           "    signal.signal(signal.SIGUSR1, signal.SIG_DFL)\n"
           "    while True:\n"
           "        pass\n",
           "");
  ExpectStopsInTime("Test.TakeAlarm");
  ExpectStopsInTime("Test.TakeAlarm");
}

TEST_F(TimeLimitTest, AuxiliaryFunctionsAndModuleCodeAreLimitedToo) {
  LoadRule("Test.SlowTitle",
           "def rule(event):\n    return True\n\ndef title(event):\n    while True:\n"
           "        pass\n",
           "");
  RuleOutcome out = RunOn("Test.SlowTitle", kEvent, RunMode::kLive);
  EXPECT_TRUE(out.matched);
  ASSERT_TRUE(out.function(RuleFunction::kTitle).error.has_value());
  EXPECT_EQ(out.function(RuleFunction::kTitle).error->message(),
            "rule function [title] exceeded the time limit of 1s");
  EXPECT_EQ(out.alert.title, "Test.SlowTitle");

  std::vector<v1::Diagnostic> diagnostics;
  absl::Status s = Load({File("rules/r.yml", RuleYaml("Test.SlowImport", "r.py")),
                         File("rules/r.py", "while True:\n    pass\n")},
                        &diagnostics);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_THAT(diagnostics[0].message(),
              StartsWith("rule Test.SlowImport: TimeoutError: rule function [<module>]"));
}

TEST_F(TimeLimitTest, FastCallsAreNotInterruptedLater) {
  LoadRule("Test.Fast", "import time\n\ndef rule(event):\n    time.sleep(0.9)\n    return True\n",
           "");
  EXPECT_TRUE(RunOn("Test.Fast", kEvent, RunMode::kLive).matched);
  // A timer left armed would interrupt this sleep in Python code run later.
  EXPECT_NO_THROW(py::module_::import("time").attr("sleep")(0.3));
  EXPECT_TRUE(RunOn("Test.Fast", kEvent, RunMode::kLive).matched);
}

}  // namespace
}  // namespace pantherd::engine
