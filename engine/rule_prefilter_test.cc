// Rule pre-conditions: what DerivePrecondition reads from rule sources, how
// ProbeField reads event fields, and the proof that matters: over a
// generated stream, evaluating with the pre-condition index gives exactly the
// results of calling every rule, for the bundled pack and for rules written
// to probe the edges. One embedded interpreter per test binary.
#include "engine/rule_prefilter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "engine/kv_memory.h"
#include "engine/normalize.h"
#include "engine/python_worker.h"
#include "engine/python_worker_test_env.h"
#include "engine/rule_prefilter_test_util.h"
#include "engine/rule_set_manager.h"
#include "engine/worker_pool.h"

namespace pantherd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new PythonWorkerEnvironment(absl::Seconds(5)));

std::string Describe(const FieldCondition& c) {
  std::vector<std::string> values(c.values.begin(), c.values.end());
  std::sort(values.begin(), values.end());
  return absl::StrCat(absl::StrJoin(c.path, "."), "=", absl::StrJoin(values, "|"),
                      c.prefixes.empty() ? "" : "^", absl::StrJoin(c.prefixes, "|"),
                      c.substrings.empty() ? "" : "~", absl::StrJoin(c.substrings, "|"),
                      c.nonempty_strings ? "?" : "", c.missing_may_match ? "+missing" : "",
                      c.hashes_value ? "#hash" : "", c.other_types_may_match ? "*other" : "");
}

// The pre-condition of a one-rule set: one string per conjunction, its
// conditions as "path=v1|v2[^prefix][~substring][?][+missing][#hash][*other]"
// joined by " & ".
std::vector<std::string> Disjuncts(const std::string& python) {
  Load(RuleFiles("Probe.Rule", python));
  const LoadedSet* set = PythonWorkerEnvironment::worker().runtime().loaded_set();
  EXPECT_NE(set, nullptr);
  if (set == nullptr || set->rules.size() != 1) return {"<not loaded>"};
  std::optional<Precondition> p = DerivePrecondition(set->rules[0]);
  std::vector<std::string> out;
  if (!p.has_value()) return out;
  for (const std::vector<FieldCondition>& all : p->any) {
    std::vector<std::string> parts;
    for (const FieldCondition& c : all) parts.push_back(Describe(c));
    out.push_back(absl::StrJoin(parts, " & "));
  }
  return out;
}

// The conditions of a pre-condition with one conjunction (none: empty).
std::vector<std::string> Conditions(const std::string& python) {
  std::vector<std::string> any = Disjuncts(python);
  if (any.empty()) return {};
  if (any.size() > 1) return {absl::StrCat("<", any.size(), " conjunctions>")};
  return absl::StrSplit(any[0], " & ");
}

TEST(DerivePreconditionTest, ComparisonsInTheReturnExpression) {
  EXPECT_THAT(Conditions("def rule(event):\n    return event.get('eventType') == 'a.b'\n"),
              ElementsAre("eventType=a.b"));
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    return bool(\n"
                         "        event.get('eventType') == 'x'\n"
                         "        and event.deep_get('outcome', 'result') == 'FAILURE'\n"
                         "        and len(event.get('actor', {})) > 0\n"
                         "    )\n"),
              ElementsAre("eventType=x", "outcome.result=FAILURE"));
  // Reversed operands, and a default that satisfies the comparison.
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    return 'y' == event.get('eventType') and "
                         "event.deep_get('outcome', 'result', default='SUCCESS') == 'SUCCESS'\n"),
              ElementsAre("eventType=y", "outcome.result=SUCCESS+missing"));
}

TEST(DerivePreconditionTest, EarlyReturnsAndModuleConstants) {
  EXPECT_THAT(Conditions("EVENTS = ('a', 'b')\n"
                         "def rule(event):\n"
                         "    '''Docstring.'''\n"
                         "    global SEEN\n"
                         "    SEEN = set()\n"
                         "    if event.get('eventType') not in EVENTS:\n"
                         "        return False\n"
                         "    if not event.deep_get('outcome', 'result') == 'SUCCESS':\n"
                         "        return False\n"
                         "    return compute(event)\n"
                         "def compute(event):\n"
                         "    return True\n"),
              ElementsAre("eventType=a|b", "outcome.result=SUCCESS"));
  // A set constant, only read: membership hashes the value.
  EXPECT_THAT(Conditions("EVENTS = {'a', 'b'}\n"
                         "def rule(event):\n"
                         "    return event.get('eventType') in EVENTS\n"),
              ElementsAre("eventType=a|b#hash"));
  // An `or` of exclusions gives one condition per operand.
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    if event.get('eventType') != 'a' or event.get('k', 'd') != 'd':\n"
                         "        return False\n"
                         "    return True\n"),
              ElementsAre("eventType=a", "k=d+missing"));
}

TEST(DerivePreconditionTest, NothingWhenSkippingCouldChangeAnOutcome) {
  // A statement before the check may raise (a rule error must be reported).
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    x = event['k']\n"
                         "    return event.get('eventType') == 'a'\n"),
              ElementsAre());
  // A list that the module mutates is not a constant.
  EXPECT_THAT(Conditions("EVENTS = ['a']\n"
                         "EVENTS.append('b')\n"
                         "def rule(event):\n"
                         "    return event.get('eventType') in EVENTS\n"),
              ElementsAre());
  // A name some function may rebind.
  EXPECT_THAT(Conditions("EVENTS = ('a',)\n"
                         "def grow():\n"
                         "    global EVENTS\n"
                         "    EVENTS = EVENTS + ('b',)\n"
                         "def rule(event):\n"
                         "    return event.get('eventType') in EVENTS\n"),
              ElementsAre());
  // An exclusion, not a requirement.
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    if event.get('eventType') == 'a':\n"
                         "        return False\n"
                         "    return True\n"),
              ElementsAre());
  // Substring membership, a shadowed bool, a non-False early return, a
  // subscript that raises on a missing key, a star import, a decorator.
  EXPECT_THAT(Conditions("def rule(event):\n    return event.get('eventType') in 'abc'\n"),
              ElementsAre());
  EXPECT_THAT(Conditions("bool = lambda x: True\n"
                         "def rule(event):\n"
                         "    return bool(event.get('eventType') == 'a')\n"),
              ElementsAre());
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    if event.get('eventType') != 'a':\n"
                         "        return None\n"
                         "    return True\n"),
              ElementsAre());
  EXPECT_THAT(Conditions("def rule(event):\n    return event['eventType'] == 'a'\n"),
              ElementsAre());
  EXPECT_THAT(Conditions("from os.path import *\n"
                         "def rule(event):\n    return event.get('eventType') == 'a'\n"),
              ElementsAre());
  EXPECT_THAT(Conditions("import functools\n"
                         "@functools.lru_cache\n"
                         "def rule(event):\n    return event.get('eventType') == 'a'\n"),
              ElementsAre());
  // The module replaces its rule function after the definition.
  EXPECT_THAT(Conditions("def rule(event):\n    return event.get('eventType') == 'a'\n"
                         "def other(event):\n    return True\n"
                         "rule = other\n"),
              ElementsAre());
}

std::shared_ptr<const EventDocument> Doc(const std::string& json) {
  absl::StatusOr<std::shared_ptr<const EventDocument>> doc = ParseEvent(json);
  EXPECT_TRUE(doc.ok()) << doc.status();
  return *doc;
}

TEST(ProbeFieldTest, ReadsAsPantherLookupsDo) {
  auto doc = Doc(R"({"eventType":"a","EVENTTYPE":"b","Outcome":{"result":"FAILURE"},"n":3,"o":{},)"
                 R"("nul":null,"s":"x","s2":{"k":[1]}})");
  ProbeResult r = ProbeField(*doc, {"eventType"});
  EXPECT_EQ(r.kind, FieldKind::kString);
  EXPECT_EQ(r.text, "a");  // The exact key wins.
  r = ProbeField(*doc, {"outcome", "RESULT"});
  EXPECT_EQ(r.kind, FieldKind::kString);  // Case-insensitive at every level.
  EXPECT_EQ(r.text, "FAILURE");
  EXPECT_EQ(ProbeField(*doc, {"n"}).kind, FieldKind::kHashable);
  EXPECT_EQ(ProbeField(*doc, {"o"}).kind, FieldKind::kUnhashable);
  EXPECT_EQ(ProbeField(*doc, {"s2", "k"}).kind, FieldKind::kUnhashable);
  EXPECT_EQ(ProbeField(*doc, {"nul"}).kind, FieldKind::kUnknown);
  EXPECT_EQ(ProbeField(*doc, {"missing"}).kind, FieldKind::kMissing);
  EXPECT_EQ(ProbeField(*doc, {"s", "deeper"}).kind, FieldKind::kMissing);  // Through a str.
  // A first case-insensitive match in document order.
  auto twice = Doc(R"({"Key":"first","KEY":"second"})");
  r = ProbeField(*twice, {"key"});
  EXPECT_EQ(r.text, "first");
  // Non-ASCII keys could lower() to the query: undecided.
  EXPECT_EQ(ProbeField(*Doc("{\"\xE2\x84\xAA\":\"kelvin\"}"), {"k"}).kind, FieldKind::kUnknown);
}

TEST(DerivePreconditionTest, StartswithOnALookup) {
  EXPECT_THAT(Conditions("PREFIX = 'system.idp.lifecycle.'\n"
                         "def rule(event):\n"
                         "    return bool(str(event.get('eventType') or '').startswith(PREFIX)\n"
                         "                and event.deep_get('outcome', 'result') == 'SUCCESS')\n"),
              ElementsAre("eventType=^system.idp.lifecycle.*other", "outcome.result=SUCCESS"));
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    if not event.get('eventType', '').startswith(('a.', 'b.')):\n"
                         "        return False\n"
                         "    return True\n"),
              ElementsAre("eventType=^a.|b.*other"));
  // The default decides what a missing field does.
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    return event.get('eventType', 'a.x').startswith('a.')\n"),
              ElementsAre("eventType=^a.+missing*other"));
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    return str(event.get('eventType', 'a.x') or '').startswith('a.')\n"),
              ElementsAre("eventType=^a.+missing*other"));
  // No condition: None.startswith raises on a missing field; an empty prefix
  // always matches; a prefix that is not a constant; str shadowed; negated.
  EXPECT_THAT(Conditions("def rule(event):\n    return event.get('eventType').startswith('a')\n"),
              IsEmpty());
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    return str(event.get('eventType') or '').startswith('')\n"),
              IsEmpty());
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    p = 'a'\n"
                         "    return str(event.get('eventType') or '').startswith(p)\n"),
              IsEmpty());
  EXPECT_THAT(Conditions("str = repr\n"
                         "def rule(event):\n"
                         "    return str(event.get('eventType') or '').startswith('a')\n"),
              IsEmpty());
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    return not str(event.get('eventType') or '').startswith('a')\n"),
              IsEmpty());
}

// elif / else branches, a local holding a lookup, `is None`: read by the
// analysis test below and run in the equivalence test.
constexpr char kElifElseRule[] =
    "def rule(event):\n"
    "    sid = event.deep_get('authenticationContext', 'externalSessionId', default='none')\n"
    "    if sid == 'none':\n"
    "        return False\n"
    "    elif event.get('severity') == 'WARN':\n"
    "        return sid in ('s1', 's2')\n"
    "    elif event.get('eventType') is None:\n"
    "        return True\n"
    "    else:\n"
    "        return False\n";

// A local assigned a lookup in one branch, read after it: on the other
// branch the read raises (UnboundLocalError), so it is not read as the lookup.
constexpr char kBranchLocalRule[] =
    "def rule(event):\n"
    "    if event.get('eventType') == 'user.account.lock':\n"
    "        x = event.get('severity')\n"
    "    return x == 'WARN'\n";

TEST(DerivePreconditionTest, BranchesHelpersAndLocals) {
  // A branch with effects counts where its test may hold; a helper called
  // with the event contributes its own pre-condition; the literal reset of
  // globals at the top is stepped over (the bundled push-bombing rule).
  EXPECT_THAT(Disjuncts("TYPES = ('v1', 'v2')\n"
                        "N, F = 0, False\n"
                        "def _verify(event):\n"
                        "    \"\"\"Doc.\"\"\"\n"
                        "    if event.get('eventType') not in TYPES:\n"
                        "        return False\n"
                        "    return event.deep_get('outcome', 'result') == 'SUCCESS'\n"
                        "def rule(event):\n"
                        "    global N, F\n"
                        "    N, F = 0, False\n"
                        "    if event.get('eventType') == 'deny':\n"
                        "        N = compute(event)\n"
                        "        return N > 3\n"
                        "    if _verify(event):\n"
                        "        F = True\n"
                        "        return True\n"
                        "    return False\n"
                        "def compute(event):\n    return 5\n"),
              ElementsAre("eventType=deny", "eventType=v1|v2 & outcome.result=SUCCESS"));
  // elif / else branches, a local holding a lookup, `is None`.
  EXPECT_THAT(Disjuncts(kElifElseRule),
              ElementsAre("severity=WARN & authenticationContext.externalSessionId=s1|s2",
                          "eventType=+missing"));
  // A substring test (a missing field raises: the rule runs), a lookup's truth.
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    if not event.deep_get('client', 'ipAddress'):\n"
                         "        return False\n"
                         "    return 'lock' in event.get('eventType') and bool(event.get('k'))\n"),
              ElementsAre("client.ipAddress=?*other", "eventType=~lock+missing*other"));
  EXPECT_THAT(Conditions("def rule(event):\n    return bool(event.get('user_email'))\n"),
              ElementsAre("user_email=?*other"));
  // A rule returning a lookup counts where it is reached: not a bool.
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    return event.get('eventType') == 'x' and event.get('k')\n"),
              ElementsAre("eventType=x"));
  // Nothing: falling off the end returns None (a rule error) everywhere else;
  // a helper that changes a global; a global reset after a branch that may
  // read it; a helper called with something else.
  EXPECT_THAT(Disjuncts("def rule(event):\n"
                        "    if event.get('eventType') == 'a':\n"
                        "        return True\n"),
              IsEmpty());
  EXPECT_THAT(Disjuncts("SEEN = 0\n"
                        "def _count(event):\n"
                        "    global SEEN\n"
                        "    SEEN = 1\n"
                        "    return event.get('eventType') == 'a'\n"
                        "def rule(event):\n"
                        "    return bool(_count(event))\n"),
              IsEmpty());
  EXPECT_THAT(Disjuncts("G = 1\n"
                        "def rule(event):\n"
                        "    global G\n"
                        "    if event.get('eventType') == 'a':\n"
                        "        return G == 1\n"
                        "    G = 0\n"
                        "    return event.get('eventType') == 'b'\n"),
              IsEmpty());
  EXPECT_THAT(Disjuncts(kBranchLocalRule), IsEmpty());
  EXPECT_THAT(Disjuncts("def _is(x):\n"
                        "    return x.get('eventType') == 'a'\n"
                        "def rule(event):\n"
                        "    return bool(_is(event.get('actor')))\n"),
              IsEmpty());
  // A recursive helper is not read through: its call may do anything, but
  // only once the condition before it holds.
  EXPECT_THAT(Disjuncts("def _loop(event):\n"
                        "    return event.get('eventType') == 'a' and _loop(event)\n"
                        "def rule(event):\n"
                        "    return bool(_loop(event))\n"),
              ElementsAre("eventType=a"));
}

// ---- Soundness: holes found, each closed and kept as a case ----------------

// Runs `python` (rule Probe.Rule) over `events` with and without the index
// and expects no difference in results or module state.
void ExpectSameWithAndWithoutIndex(const std::string& python,
                                   const std::vector<std::string>& events) {
  const std::vector<v1::AnalysisFile> files = RuleFiles("Probe.Rule", python);
  const RunOutcome with = RunOneByOne(files, events, true);
  const RunOutcome without = RunOneByOne(files, events, false);
  EXPECT_EQ(FirstDifference(with, without, events), "") << python;
}

// Issue 13 (a): a list constant reached through an alias, which another
// function of the module mutates through its first name.
constexpr char kAliasedListRule[] =
    "KNOWN_BAD = ['user.session.start']\n"
    "WATCHED = KNOWN_BAD\n"
    "def rule(event):\n"
    "    if event.get('eventType') not in WATCHED:\n"
    "        return False\n"
    "    return True\n"
    "def title(event):\n"
    "    KNOWN_BAD.append('user.account.lock')\n"
    "    return 'x'\n";

TEST(PreconditionSoundnessTest, ListConstantMutatedThroughAnAlias) {
  EXPECT_THAT(Disjuncts(kAliasedListRule), IsEmpty());
  ExpectSameWithAndWithoutIndex(kAliasedListRule, {R"({"eventType":"user.session.start"})",
                                                   R"({"eventType":"user.account.lock"})"});
}

// Issue 13 (b): an assignment of literals that raises before the guard.
constexpr char kRaisingUnpackRule[] =
    "def rule(event):\n"
    "    user, domain = ('admin',)\n"
    "    if event.get('eventType') != 'user.session.start':\n"
    "        return False\n"
    "    return True\n";

TEST(PreconditionSoundnessTest, LiteralAssignmentThatRaisesBeforeTheGuard) {
  EXPECT_THAT(Disjuncts(kRaisingUnpackRule), IsEmpty());
  ExpectSameWithAndWithoutIndex(kRaisingUnpackRule, {R"({"eventType":"user.account.lock"})"});
}

// The audit of the same classes: every other way to alias or reach a
// constant, to change it, to rebind a name, or to raise in an assignment.
TEST(PreconditionSoundnessTest, AliasesAndMutationsOfConstants) {
  // Chained assignment: two names, one list.
  EXPECT_THAT(Disjuncts("WATCHED = OTHER = ['a']\n"
                        "def rule(event):\n"
                        "    return event.get('eventType') in WATCHED\n"
                        "def title(event):\n"
                        "    OTHER.append('b')\n"
                        "    return 'x'\n"),
              IsEmpty());
  // A list of another module (it may change it), or any list not made by a
  // display here.
  EXPECT_THAT(Disjuncts("import sys\n"
                        "WATCHED = sys.path\n"
                        "def rule(event):\n"
                        "    return event.get('eventType') in WATCHED\n"),
              IsEmpty());
  EXPECT_THAT(Disjuncts("from sys import path\n"
                        "def rule(event):\n"
                        "    return event.get('eventType') in path\n"),
              IsEmpty());
  EXPECT_THAT(Disjuncts("WATCHED = list(('a', 'b'))\n"
                        "def rule(event):\n"
                        "    return event.get('eventType') in WATCHED\n"),
              IsEmpty());
  // Every mutation reads the name other than in a comparison.
  for (const char* mutation :
       {"WATCHED.append('b')", "WATCHED.extend(['b'])", "WATCHED.insert(0, 'b')", "WATCHED.pop()",
        "WATCHED.clear()", "WATCHED[0] = 'b'", "WATCHED.__setitem__(0, 'b')", "del WATCHED[0]",
        "WATCHED[0:0] = ['b']", "sorted(WATCHED)"}) {
    EXPECT_THAT(Disjuncts(absl::StrCat("WATCHED = ['a']\n"
                                       "def rule(event):\n"
                                       "    return event.get('eventType') in WATCHED\n"
                                       "def title(event):\n    ",
                                       mutation, "\n    return 'x'\n")),
                IsEmpty())
        << mutation;
  }
  for (const char* mutation :
       {"WATCHED.add('b')", "WATCHED.update(['b'])", "WATCHED.discard('a')", "WATCHED |= {'b'}"}) {
    EXPECT_THAT(Disjuncts(absl::StrCat("WATCHED = {'a'}\n"
                                       "def rule(event):\n"
                                       "    return event.get('eventType') in WATCHED\n"
                                       "def title(event):\n    ",
                                       mutation, "\n    return 'x'\n")),
                IsEmpty())
        << mutation;
  }
  // Rebinding: `global` in any function, augmented assignment at module level.
  EXPECT_THAT(Disjuncts("WATCHED = ('a',)\n"
                        "def rule(event):\n"
                        "    return event.get('eventType') in WATCHED\n"
                        "def title(event):\n"
                        "    global WATCHED\n"
                        "    WATCHED += ('b',)\n"
                        "    return 'x'\n"),
              IsEmpty());
  EXPECT_THAT(Disjuncts("WATCHED = ['a']\n"
                        "def rule(event):\n"
                        "    return event.get('eventType') in WATCHED\n"
                        "WATCHED += ['b']\n"),
              IsEmpty());
  // Rebinding at module level after the definition: the module has run
  // when the set is loaded, so the last value is the one rule() sees.
  EXPECT_THAT(Disjuncts("WATCHED = ('a',)\n"
                        "def rule(event):\n"
                        "    return event.get('eventType') in WATCHED\n"
                        "WATCHED = ('b',)\n"),
              ElementsAre("eventType=b"));
  // Reflection: the namespace by name, code replaced.
  EXPECT_THAT(Disjuncts("WATCHED = ('a',)\n"
                        "def rule(event):\n"
                        "    return event.get('eventType') in WATCHED\n"
                        "def title(event):\n"
                        "    globals()['WATCHED'] = ('b',)\n"
                        "    return 'x'\n"),
              IsEmpty());
  EXPECT_THAT(Disjuncts("def rule(event):\n"
                        "    return event.get('eventType') == 'a'\n"
                        "def other(event):\n"
                        "    return True\n"
                        "def title(event):\n"
                        "    rule.__code__ = other.__code__\n"
                        "    return 'x'\n"),
              IsEmpty());
  // A module __getattr__ answers attribute reads, not the function's global
  // lookups: the name is unbound for rule() (NameError on every call).
  EXPECT_THAT(Disjuncts("def __getattr__(name):\n"
                        "    return ('a',)\n"
                        "def rule(event):\n"
                        "    return event.get('eventType') in WATCHED\n"),
              IsEmpty());
  ExpectSameWithAndWithoutIndex(
      "def __getattr__(name):\n"
      "    return ('user.session.start',)\n"
      "def rule(event):\n"
      "    return event.get('eventType') in WATCHED\n",
      {R"({"eventType":"user.account.lock"})"});
  // A match capture binds a local that hides the constant.
  EXPECT_THAT(Disjuncts("WATCHED = ('a',)\n"
                        "def rule(event):\n"
                        "    match event.get('k'):\n"
                        "        case [*WATCHED]:\n"
                        "            pass\n"
                        "    return event.get('eventType') in WATCHED\n"),
              IsEmpty());
  // Still read: a list made here and only compared with, however it is
  // bound (annotated).
  EXPECT_THAT(Disjuncts("WATCHED: list = ['a', 'b']\n"
                        "def rule(event):\n"
                        "    return event.get('eventType') in WATCHED\n"
                        "def title(event):\n"
                        "    return str('a' in WATCHED)\n"),
              ElementsAre("eventType=a|b"));
}

TEST(PreconditionSoundnessTest, NothingWhenCodeElsewhereCanReachTheModule) {
  // A function handed out: other code may rebind any global through its
  // __globals__, constants included.
  EXPECT_THAT(Disjuncts("import os\n"
                        "WATCHED = ('a',)\n"
                        "def rule(event):\n"
                        "    return event.get('eventType') in WATCHED\n"
                        "def title(event):\n"
                        "    return 'x'\n"
                        "os.register_at_fork(after_in_child=title)\n"),
              IsEmpty());
  // Generator expressions consumed at once and key functions do not escape.
  EXPECT_THAT(
      Disjuncts("WATCHED = ('a',)\n"
                "def rule(event):\n"
                "    return event.get('eventType') in WATCHED\n"
                "def title(event):\n"
                "    names = sorted(event.keys(), key=lambda k: k.lower())\n"
                "    return ','.join(str(n) for n in names) + str(any(n for n in names))\n"),
      ElementsAre("eventType=a"));
}

// A global that replaces a method of the event type at import: lookups are
// no longer what the C++ probe reads.
TEST(PreconditionSoundnessTest, NothingWhenTheEventTypeOrBuiltinsAreReplaced) {
  const std::string rule =
      "def rule(event):\n"
      "    return event.get('eventType') == 'user.session.start'\n";
  for (const char* patch :
       {"import panther_core\n"
        "panther_core.PantherEvent.get = lambda self, key, default=None: 'user.session.start'\n",
        "import builtins\nbuiltins.bool = lambda x: True\n"}) {
    std::vector<v1::AnalysisFile> files = RuleFiles("Probe.Rule", rule);
    files.push_back(File("probe/patcher.yml",
                         "AnalysisType: global\nGlobalID: patcher\nFilename: patcher.py\n"));
    files.push_back(File("probe/patcher.py", absl::StrCat(patch, "import sys\n")));
    files.push_back(File("probe/Probe.Importer.yml",
                         "AnalysisType: rule\nRuleID: Probe.Importer\nFilename: importer.py\n"
                         "Enabled: true\nLogTypes: [Okta.SystemLog]\nSeverity: Low\n"));
    files.push_back(
        File("probe/importer.py", "import patcher\ndef rule(event):\n    return False\n"));
    Load(files);
    const LoadedSet* set = PythonWorkerEnvironment::worker().runtime().loaded_set();
    ASSERT_NE(set, nullptr);
    for (const LoadedRule& loaded : set->rules) {
      EXPECT_FALSE(DerivePrecondition(loaded).has_value()) << loaded.id() << " " << patch;
    }
    const std::vector<std::string> events = {R"({"eventType":"user.account.lock"})"};
    const RunOutcome with = RunOneByOne(files, events, true);
    const RunOutcome without = RunOneByOne(files, events, false);
    EXPECT_EQ(FirstDifference(with, without, events), "") << patch;
  }
  // Undo the patches for the tests after this one.
  pybind11::exec(
      "import builtins, _pantherd_event\n"
      "builtins.bool = type(True)\n"
      "del _pantherd_event.PantherEvent.get\n");
}

// A list of a global helper module, changed by that module's own function
// (found by the differential test as `C = helpers.SHARED`).
TEST(PreconditionSoundnessTest, ListOfAHelperModuleChangedByItsOwnFunction) {
  for (const char* binding : {"from shared_lists import WATCHED\n",
                              "import shared_lists\nWATCHED = shared_lists.WATCHED\n"}) {
    std::vector<v1::AnalysisFile> files =
        RuleFiles("Probe.Rule", absl::StrCat("import shared_lists\n", binding,
                                             "def rule(event):\n"
                                             "    return event.get('eventType') in WATCHED\n"
                                             "def title(event):\n"
                                             "    shared_lists.grow('user.account.lock')\n"
                                             "    return 'x'\n"));
    files.push_back(
        File("probe/shared_lists.yml",
             "AnalysisType: global\nGlobalID: shared_lists\nFilename: shared_lists.py\n"));
    files.push_back(File("probe/shared_lists.py",
                         "WATCHED = ['user.session.start']\n"
                         "def grow(value):\n"
                         "    WATCHED.append(value)\n"));
    Load(files);
    const LoadedSet* set = PythonWorkerEnvironment::worker().runtime().loaded_set();
    ASSERT_NE(set, nullptr);
    ASSERT_EQ(set->rules.size(), 1u);
    EXPECT_FALSE(DerivePrecondition(set->rules[0]).has_value()) << binding;
    const std::vector<std::string> events = {R"({"eventType":"user.session.start"})",
                                             R"({"eventType":"user.account.lock"})"};
    const RunOutcome with = RunOneByOne(files, events, true, {"shared_lists"});
    const RunOutcome without = RunOneByOne(files, events, false, {"shared_lists"});
    EXPECT_EQ(FirstDifference(with, without, events), "") << binding;
  }
}

TEST(PreconditionSoundnessTest, AssignmentsThatRaise) {
  for (const char* statement :
       {"a, b = 'abc'", "a, b = 1", "a, b = ('x', 'y', 'z')", "x = {['a']: 1}", "x = {['a']}",
        "x = {(): 1, ([],): 2}", "(a, b), c = (1, 2), 3"}) {
    const std::string python = absl::StrCat("def rule(event):\n    ", statement,
                                            "\n"
                                            "    if event.get('eventType') != 'a':\n"
                                            "        return False\n"
                                            "    return True\n");
    EXPECT_THAT(Disjuncts(python), IsEmpty()) << statement;
  }
  // Found by the differential test: a reset of globals at the top of rule()
  // that raises (so every call is a rule error).
  constexpr char kRaisingReset[] =
      "N, F = 0, 0\n"
      "def rule(event):\n"
      "    global N, F\n"
      "    N, F = (0,)\n"
      "    if event.get('eventType') != 'user.session.start':\n"
      "        return False\n"
      "    return True\n";
  EXPECT_THAT(Disjuncts(kRaisingReset), IsEmpty());
  ExpectSameWithAndWithoutIndex(kRaisingReset, {R"({"eventType":"user.account.lock"})"});
  // Assignments that cannot raise are still stepped over.
  EXPECT_THAT(Conditions("def rule(event):\n"
                         "    a, b = ('x', 'y')\n"
                         "    [c, d] = [1, {'k': (1, 2)}]\n"
                         "    e = {'a', ('b', 1)}\n"
                         "    f = g = {}\n"
                         "    if event.get('eventType') != 'a':\n"
                         "        return False\n"
                         "    return True\n"),
              ElementsAre("eventType=a"));
  ExpectSameWithAndWithoutIndex(
      "def rule(event):\n"
      "    x = {['a']: 1}\n"
      "    if event.get('eventType') != 'user.session.start':\n"
      "        return False\n"
      "    return True\n",
      {R"({"eventType":"user.account.lock"})"});
}

// A generator function's call runs nothing and returns a truthy generator.
constexpr char kGeneratorHelperRule[] =
    "def _check(event):\n"
    "    if event.get('eventType') != 'user.session.start':\n"
    "        return False\n"
    "    yield True\n"
    "def rule(event):\n"
    "    if _check(event):\n"
    "        return True\n"
    "    return False\n";

TEST(PreconditionSoundnessTest, GeneratorFunctionsAreNotReadAsFunctions) {
  EXPECT_THAT(Disjuncts(kGeneratorHelperRule), IsEmpty());
  ExpectSameWithAndWithoutIndex(kGeneratorHelperRule, {R"({"eventType":"user.account.lock"})"});
  EXPECT_THAT(Disjuncts("def rule(event):\n"
                        "    if event.get('eventType') != 'a':\n"
                        "        return False\n"
                        "    yield True\n"),
              IsEmpty());
}

TEST(PreconditionSoundnessTest, ResetsOfGlobalsOnlyWhenNothingOutsideCanReadThem) {
  // Without escapes, the reset at the top is stepped over...
  EXPECT_THAT(Conditions("N = 0\n"
                         "def rule(event):\n"
                         "    global N\n"
                         "    N = 0\n"
                         "    if event.get('eventType') != 'a':\n"
                         "        return False\n"
                         "    N = 1\n"
                         "    return True\n"),
              ElementsAre("eventType=a"));
  // ...but not when a function of the module can be called from elsewhere
  // (a lambda, a def passed as a value, a nested def, a generator) or a
  // caught exception's frames can be.
  for (const char* escape :
       {"CALLBACKS = [lambda: N]\n", "def peek():\n    return N\nCALLBACKS = [peek]\n",
        "def outer():\n    def inner():\n        return N\n    return inner\n",
        "def gen():\n    yield N\n",
        "def title(event):\n    try:\n        1 / 0\n    except ZeroDivisionError as e:\n"
        "        KEPT.append(e)\n    return 'x'\nKEPT = []\n",
        "class Box:\n    pass\n",
        "def title(event):\n    return str(sorted((x for x in ()), key=peek))\n"
        "def peek(x):\n    return N\n"}) {
    EXPECT_THAT(Disjuncts(absl::StrCat("N = 0\n", escape,
                                       "def rule(event):\n"
                                       "    global N\n"
                                       "    N = 0\n"
                                       "    if event.get('eventType') != 'a':\n"
                                       "        return False\n"
                                       "    N = 1\n"
                                       "    return True\n")),
                IsEmpty())
        << escape;
  }
}

// ---- Equivalence over a generated stream ----------------------------------

// Rules written to sit on the edges of the analysis: set membership on
// values that may be objects, defaults, case, early exits with state.
std::vector<v1::AnalysisFile> EdgeRules() {
  std::vector<v1::AnalysisFile> files;
  auto add = [&](const std::string& id, const std::string& python) {
    for (v1::AnalysisFile& f : RuleFiles(id, python)) files.push_back(std::move(f));
  };
  add("Edge.SetMembership",
      "TYPES = {'user.session.start', 'policy.evaluate_sign_on'}\n"
      "def rule(event):\n    return event.get('eventType') in TYPES\n");
  add("Edge.DefaultMatches",
      "def rule(event):\n"
      "    return event.deep_get('outcome', 'result', default='FAILURE') == 'FAILURE'\n");
  add("Edge.GetDefault",
      "def rule(event):\n"
      "    if event.get('severity', 'INFO') not in ('INFO', 'WARN'):\n"
      "        return False\n"
      "    return event.deep_get('client', 'ipAddress', default='') .startswith('10.0.0.1')\n");
  add("Edge.RaisesAfterCheck",
      "def rule(event):\n"
      "    if event.get('eventType') != 'user.account.lock':\n"
      "        return False\n"
      "    return event['no_such_field'] == 1\n");
  add("Edge.NonBoolAfterCheck",
      "def rule(event):\n"
      "    return event.get('eventType') == 'system.api_token.create' and 'yes'\n");
  add("Edge.StartswithOr",
      "PREFIXES = ('user.session', 'policy.')\n"
      "def rule(event):\n"
      "    if not str(event.deep_get('client', 'ipAddress') or '').startswith('10.0.0.1'):\n"
      "        return False\n"
      "    return str(event.get('eventType') or '').startswith(PREFIXES)\n");
  add("Edge.StartswithDirect",
      "def rule(event):\n"
      "    return event.get('severity', 'WA').startswith('WA')\n");
  // Branches with effects, a helper's own conditions, and state kept in the
  // detection cache and in globals (like the bundled push-bombing rule).
  add("Edge.BranchesAndHelper",
      "from panther_detection_helpers.caching import increment_counter, get_counter\n"
      "VERIFY = ('user.authentication.auth_via_mfa', 'user.authentication.sso')\n"
      "COUNT = 0\n"
      "FLAG = False\n"
      "def _verified(event):\n"
      "    if event.get('eventType') not in VERIFY:\n"
      "        return False\n"
      "    if event.deep_get('outcome', 'result') != 'SUCCESS':\n"
      "        return False\n"
      "    return event.deep_get('actor', 'alternateId')\n"
      "def rule(event):\n"
      "    global COUNT, FLAG\n"
      "    COUNT, FLAG = 0, False\n"
      "    if event.get('eventType') == 'user.account.lock':\n"
      "        COUNT = increment_counter('locks:' + str(event.deep_get('actor', 'alternateId')))\n"
      "        return COUNT >= 3\n"
      "    if _verified(event):\n"
      "        COUNT = get_counter('locks:' + str(event.deep_get('actor', 'alternateId')))\n"
      "        FLAG = True\n"
      "        return COUNT >= 2\n"
      "    return False\n"
      "def title(event):\n    return f'{COUNT} {FLAG}'\n");
  add("Edge.ElifElse", kElifElseRule);
  // A local bound in a branch only: elsewhere reading it raises.
  add("Edge.BranchLocal", kBranchLocalRule);
  add("Edge.SubstringAndTruth",
      "def rule(event):\n"
      "    if not event.deep_get('client', 'ipAddress'):\n"
      "        return False\n"
      "    return 'lock' in event.get('eventType') and bool(event.get('severity'))\n");
  add("Edge.SubstringDefault",
      "def rule(event):\n"
      "    return 'token' in event.deep_get('outcome', 'reason', default='no token')\n");
  add("Edge.FallsOffTheEnd",
      "def rule(event):\n"
      "    if event.get('eventType') == 'user.session.start':\n"
      "        return True\n");
  add("Edge.ReturnsALookup",
      "def rule(event):\n"
      "    return event.get('eventType') == 'policy.evaluate_sign_on' and "
      "event.deep_get('outcome', 'reason')\n");
  add("Edge.HelperWithState",
      "SEEN = 0\n"
      "def _count(event):\n"
      "    global SEEN\n"
      "    SEEN = SEEN + 1\n"
      "    return event.get('eventType') == 'user.account.lock'\n"
      "def rule(event):\n"
      "    if not _count(event):\n"
      "        return False\n"
      "    return SEEN % 2 == 0\n");
  add("Edge.Unconditional",
      "def rule(event):\n    return event.deep_get('actor', 'alternateId') == 'user3'\n"
      "def title(event):\n    return 'u3 ' + str(event.get('eventType'))\n");
  return files;
}

// A JSON object built by paths.
struct JsonObject {
  std::vector<std::pair<std::string, std::string>> raw;  // key -> JSON text
  std::map<std::string, JsonObject> sub;
  std::vector<std::string> order;

  void Set(const std::vector<std::string>& path, const std::string& json, size_t i = 0) {
    const std::string& key = path[i];
    if (i + 1 == path.size()) {
      for (auto& [k, v] : raw) {
        if (k == key) {
          v = json;
          return;
        }
      }
      if (sub.count(key)) return;
      raw.emplace_back(key, json);
      order.push_back(key);
      return;
    }
    for (auto& [k, v] : raw) {
      if (k == key) return;  // A scalar is in the way: leave it.
    }
    if (!sub.count(key)) order.push_back(key);
    sub[key].Set(path, json, i + 1);
  }

  std::string ToJson() const {
    std::vector<std::string> parts;
    for (const std::string& key : order) {
      auto s = sub.find(key);
      std::string value;
      if (s != sub.end()) {
        value = s->second.ToJson();
      } else {
        for (const auto& [k, v] : raw) {
          if (k == key) value = v;
        }
      }
      parts.push_back(absl::StrCat("\"", key, "\":", value));
    }
    return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
  }
};

// Okta-like events whose condition fields take the values rules look for,
// other strings, numbers, objects, case variants and absences.
std::vector<std::string> GenerateStream(const std::vector<FieldCondition>& vocabulary, int count) {
  std::mt19937 random(20261127);
  auto pick = [&](int n) { return static_cast<int>(random() % n); };
  const std::vector<std::string> common_types = {
      "user.session.start",      "user.authentication.sso", "user.authentication.auth_via_mfa",
      "policy.evaluate_sign_on", "user.account.lock",       "system.api_token.create"};
  std::vector<std::string> out;
  NormalizeContext ctx;
  ctx.source_label = "test";
  ctx.parse_time = absl::FromUnixSeconds(1772352000);
  int row = 0;
  ctx.row_id_generator = [&row] { return absl::StrCat("row", ++row); };
  for (int i = 0; i < count; ++i) {
    JsonObject e;
    e.Set({"uuid"}, absl::StrFormat("\"gen-%06d\"", i));
    e.Set({"published"}, absl::StrCat("\"",
                                      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                                                       absl::FromUnixSeconds(1772352000 + i * 7),
                                                       absl::UTCTimeZone()),
                                      "\""));
    if (pick(40) != 0) {  // sometimes no eventType at all
      e.Set({"eventType"}, absl::StrCat("\"", common_types[pick(common_types.size())], "\""));
    }
    e.Set({"severity"}, pick(3) == 0 ? "\"WARN\"" : "\"INFO\"");
    e.Set({"actor", "alternateId"}, absl::StrCat("\"user", pick(6), "\""));
    e.Set({"actor", "type"}, "\"User\"");
    e.Set({"client", "ipAddress"}, absl::StrCat("\"10.0.0.", pick(20), "\""));
    e.Set({"client", "geographicalContext", "country"},
          pick(2) ? "\"United States\"" : "\"Germany\"");
    e.Set({"authenticationContext", "externalSessionId"}, absl::StrCat("\"s", pick(30), "\""));
    if (pick(8) != 0) {
      e.Set({"outcome", "result"}, pick(2) ? "\"SUCCESS\"" : "\"FAILURE\"");
      e.Set({"outcome", "reason"}, "\"INVALID_CREDENTIALS\"");
    }
    // Overwrite some condition fields with the values the rules look for,
    // or with odd values.
    for (const FieldCondition& c : vocabulary) {
      if (pick(4) != 0) continue;
      std::vector<std::string> path = c.path;
      if (pick(10) == 0) path.back()[0] = static_cast<char>(toupper(path.back()[0]));
      std::vector<std::string> values(c.values.begin(), c.values.end());
      for (const std::string& part : c.substrings) {
        values.push_back(part);
        values.push_back(absl::StrCat("x", part, "y"));
        values.push_back(part.substr(1));
      }
      if (c.nonempty_strings) {
        values.push_back("");
        values.push_back("v");
      }
      if (values.empty()) values.push_back("some.value");  // e.g. `is None`
      for (const std::string& prefix : c.prefixes) {
        values.push_back(prefix);
        values.push_back(absl::StrCat(prefix, "tail"));
        values.push_back(prefix.substr(0, prefix.size() - 1));
      }
      std::sort(values.begin(), values.end());
      switch (pick(8)) {
        case 0:
          e.Set(path, "42");
          break;
        case 1:
          e.Set(path, "{\"x\":1}");
          break;
        case 2:
          e.Set(path, "[\"a\"]");
          break;
        case 3:
          e.Set(path, "\"unrelated.value\"");
          break;
        default:
          e.Set(path, absl::StrCat("\"", values[pick(values.size())], "\""));
      }
    }
    absl::StatusOr<NormalizedEvent> n = NormalizeEvent(e.ToJson(), kOktaSystemLog, ctx);
    EXPECT_TRUE(n.ok()) << n.status() << e.ToJson();
    if (n.ok()) out.push_back(n->json);
  }
  return out;
}

// Evaluates `stream` in batches on a freshly loaded set with an empty cache.
std::vector<internal::EventResult> EvaluateStream(const std::vector<v1::AnalysisFile>& files,
                                                  const std::vector<std::string>& stream,
                                                  bool prefilter, int64_t* rules_called) {
  PythonWorkerEnvironment::kv().Clear();
  Load(files);
  PythonWorkerEnvironment::worker().set_prefilter_enabled(prefilter);
  std::vector<internal::EventResult> results;
  *rules_called = 0;
  for (size_t start = 0; start < stream.size(); start += 100) {
    internal::EvaluateTask task;
    for (size_t i = start; i < std::min(stream.size(), start + 100); ++i) {
      internal::EventToEvaluate* e = task.add_events();
      e->set_normalized_json(stream[i]);
      e->set_log_type(std::string(kOktaSystemLog));
    }
    absl::StatusOr<internal::EvaluateResult> r = PythonWorkerEnvironment::worker().Evaluate(task);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) break;
    for (internal::EventResult& one : *r->mutable_results()) {
      *rules_called += one.rules_evaluated();
      one.clear_rules_evaluated();
      results.push_back(std::move(one));
    }
  }
  PythonWorkerEnvironment::worker().set_prefilter_enabled(true);
  return results;
}

TEST(PrefilterEquivalenceTest, SameResultsWithAndWithoutTheIndex) {
  absl::StatusOr<std::vector<v1::AnalysisFile>> bundled =
      ReadAnalysisFolder(PANTHERD_SOURCE_DIR "/rules");
  ASSERT_TRUE(bundled.ok()) << bundled.status();
  std::vector<v1::AnalysisFile> files = *bundled;
  for (v1::AnalysisFile& f : EdgeRules()) files.push_back(std::move(f));

  Load(files);
  std::vector<FieldCondition> vocabulary;
  for (const LoadedRule& rule : PythonWorkerEnvironment::worker().runtime().loaded_set()->rules) {
    std::optional<Precondition> p = DerivePrecondition(rule);
    if (!p.has_value()) continue;
    for (const std::vector<FieldCondition>& all : p->any) {
      vocabulary.insert(vocabulary.end(), all.begin(), all.end());
    }
  }
  // Most bundled rules state what they look for.
  EXPECT_GE(PythonWorkerEnvironment::worker().prefiltered_rules(), 14)
      << "of " << PythonWorkerEnvironment::worker().runtime().loaded_set()->rules.size();

  const std::vector<std::string> stream = GenerateStream(vocabulary, 4000);
  int64_t called_with = 0, called_without = 0;
  std::vector<internal::EventResult> with = EvaluateStream(files, stream, true, &called_with);
  std::vector<internal::EventResult> without =
      EvaluateStream(files, stream, false, &called_without);
  ASSERT_EQ(with.size(), stream.size());
  ASSERT_EQ(without.size(), stream.size());
  int matches = 0, errors = 0;
  for (size_t i = 0; i < stream.size(); ++i) {
    ASSERT_EQ(with[i].DebugString(), without[i].DebugString())
        << "event " << i << ": " << stream[i];
    matches += with[i].matches_size();
    errors += with[i].errors_size();
  }
  // The stream exercises the rules, and the index spares most calls.
  EXPECT_GT(matches, 100);
  EXPECT_GT(errors, 0);
  EXPECT_LT(called_with * 3, called_without) << called_with << " vs " << called_without;
  std::cout << "events " << stream.size() << ", matches " << matches << ", rule errors " << errors
            << ", rule calls " << called_with << " with the index vs " << called_without
            << " without\n";
}

}  // namespace
}  // namespace pantherd::engine
