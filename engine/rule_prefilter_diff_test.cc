// Differential test of the rule pre-conditions (engine/rule_prefilter.h).
//
// engine/rule_prefilter_diff_gen.py generates, from a fixed seed, groups of
// random rules (the constructs the analysis accepts, mixed with module state
// mutated in every way, aliases, helper modules, data model lookups, generator
// functions and raising statements) and random events. Each group is loaded
// into the test's embedded interpreter and its events are evaluated one per
// task, once with the pre-condition index and once without; the results
// (matches with every alert field and function error, rule errors with type
// and message), the shared helper module's state after every event and each
// rule module's state after every event on which the index let it run must
// be identical (FirstDifference in engine/rule_prefilter_test_util.h). A
// difference is a soundness bug of the analysis: the test prints the rule and
// the events that show it.
//
// Size: PANTHERD_PREFILTER_DIFF_CASES (generated rules; default kDefaultCases,
// about 40 s of one core) and PANTHERD_PREFILTER_DIFF_SEED (first group's
// seed; default 1). A long run:
//   PANTHERD_PREFILTER_DIFF_CASES=200000 build/engine/rule_prefilter_diff_test
#include <gtest/gtest.h>
#include <pybind11/embed.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "engine/python_worker_test_env.h"
#include "engine/rule_prefilter.h"
#include "engine/rule_prefilter_test_util.h"

namespace pantherd::engine {
namespace {

namespace py = pybind11;

::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new PythonWorkerEnvironment(absl::Seconds(5)));

constexpr int kDefaultCases = 5000;
constexpr int kRulesPerGroup = 20;
constexpr int kEventsPerGroup = 40;

int EnvInt(const char* name, int fallback) {
  const char* text = std::getenv(name);
  int value = 0;
  if (text == nullptr || !absl::SimpleAtoi(text, &value) || value <= 0) return fallback;
  return value;
}

// The generator's generate_group, loaded once.
py::object Generator() {
  static py::object* generate = nullptr;  // Owning thread only.
  if (generate == nullptr) {
    std::ifstream in(PANTHERD_SOURCE_DIR "/engine/rule_prefilter_diff_gen.py");
    std::stringstream text;
    text << in.rdbuf();
    py::dict scope;
    scope["__builtins__"] = py::module_::import("builtins");
    scope["__name__"] = "rule_prefilter_diff_gen";
    py::exec(text.str(), scope);
    generate = new py::object(scope["generate_group"]);
  }
  return *generate;
}

struct Group {
  std::vector<v1::AnalysisFile> files;
  std::vector<std::string> events;
};

Group Generate(int seed, int rules, int events) {
  Group g;
  py::tuple out = Generator()(seed, rules, events);
  for (py::handle f : out[0]) {
    py::tuple pair = py::reinterpret_borrow<py::tuple>(f);
    g.files.push_back(File(pair[0].cast<std::string>(), pair[1].cast<std::string>()));
  }
  for (py::handle e : out[1]) g.events.push_back(e.cast<std::string>());
  return g;
}

TEST(PrefilterDifferentialTest, GeneratedRulesGiveTheSameResultsWithAndWithoutTheIndex) {
  const int cases = EnvInt("PANTHERD_PREFILTER_DIFF_CASES", kDefaultCases);
  const int first_seed = EnvInt("PANTHERD_PREFILTER_DIFF_SEED", 1);
  const auto started = std::chrono::steady_clock::now();
  int64_t rules = 0, conditioned = 0, events = 0, calls_with = 0, calls_without = 0;
  int failures = 0;
  for (int seed = first_seed; rules < cases; ++seed) {
    const int n = std::min(kRulesPerGroup, static_cast<int>(cases - rules));
    const Group g = Generate(seed, n, kEventsPerGroup);
    const RunOutcome with = RunOneByOne(g.files, g.events, true, {"pf_gen_helpers"});
    conditioned += PythonWorkerEnvironment::worker().prefiltered_rules();
    const RunOutcome without = RunOneByOne(g.files, g.events, false, {"pf_gen_helpers"});
    rules += n;
    events += static_cast<int64_t>(g.events.size());
    calls_with += with.calls;
    calls_without += without.calls;
    if (rules % 10000 < n && rules >= 10000) {
      std::cout << "differential: " << rules << " rules so far, seed " << seed << std::endl;
    }
    const std::string diff = FirstDifference(with, without, g.events);
    if (!diff.empty()) {
      std::string sources;
      for (const v1::AnalysisFile& f : g.files) {
        if (f.path().rfind("gen/Gen.", 0) == 0 && f.path().size() > 3 &&
            f.path().substr(f.path().size() - 3) == ".py") {
          absl::StrAppend(&sources, "# ", f.path(), "\n", f.content(), "\n");
        }
      }
      ADD_FAILURE() << "seed " << seed << ": " << diff << "\n" << sources;
      if (++failures >= 3) break;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "differential: " << rules << " generated rules (" << conditioned
            << " with a pre-condition), " << events << " events, rule() calls " << calls_with
            << " with the index vs " << calls_without << " without, " << seconds << " s\n";
  // The generator reaches the analysis: many rules get a pre-condition and
  // the index spares calls (checked on runs large enough to say).
  if (rules >= 200) {
    EXPECT_GT(conditioned * 8, rules);
    EXPECT_LT(calls_with * 20, calls_without * 19);
  }
}

}  // namespace
}  // namespace pantherd::engine
