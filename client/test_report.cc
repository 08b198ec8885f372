#include "client/test_report.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/output.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;

constexpr char kSeparator[] = "--------------------------\n";
// The SkippedContent.analysis_type of rules skipped by skip_disabled.
constexpr char kDisabledRuleType[] = "disabled_rule";
// colorama's Fore.GREEN, Fore.RED and Style.RESET_ALL, as pat uses them.
constexpr char kGreen[] = "\x1b[32m";
constexpr char kRed[] = "\x1b[31m";
constexpr char kReset[] = "\x1b[0m";

// pat's function order (panther_core TestResultsPerFunction) and labels.
constexpr std::pair<absl::string_view, absl::string_view> kFunctions[] = {
    {"rule", "rule"},
    {"title", "title"},
    {"dedup", "dedup"},
    {"alert_context", "alertContext"},
    {"description", "description"},
    {"reference", "reference"},
    {"severity", "severity"},
    {"runbook", "runbook"},
    {"destinations", "destinations"},
    {"unique", "unique"},
};
constexpr size_t kFunctionCount = sizeof(kFunctions) / sizeof(kFunctions[0]);

// Position of `function` in pat's order; unknown names sort last.
size_t FunctionRank(absl::string_view function) {
  for (size_t i = 0; i < kFunctionCount; ++i) {
    if (kFunctions[i].first == function || kFunctions[i].second == function) return i;
  }
  return kFunctionCount;
}

// --- JSON, re-encoded as Python's json.dumps writes it ----------------------

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// `cp` as json.dumps(ensure_ascii=True) writes it inside a string literal.
void AppendPythonJsonChar(uint32_t cp, std::string& out) {
  switch (cp) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    case '\b':
      out += "\\b";
      return;
    case '\f':
      out += "\\f";
      return;
    default:
      break;
  }
  if (cp >= 0x20 && cp < 0x7F) {
    out += static_cast<char>(cp);
  } else if (cp < 0x10000) {
    absl::StrAppendFormat(&out, "\\u%04x", cp);
  } else {
    const uint32_t v = cp - 0x10000;
    absl::StrAppendFormat(&out, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
  }
}

// A small strict JSON reader that writes what it reads back in Python's
// json.dumps style. Numbers are copied as written.
class JsonRewriter {
 public:
  explicit JsonRewriter(absl::string_view text) : text_(text) {}

  // The whole text as one JSON value, re-encoded; nullopt if it is not JSON.
  std::optional<std::string> Rewrite() {
    std::string out;
    SkipSpace();
    if (!Value(out, 0)) return std::nullopt;
    SkipSpace();
    if (pos_ != text_.size()) return std::nullopt;
    return out;
  }

  // The whole text as one JSON string, decoded to UTF-8; nullopt if it is
  // something else.
  std::optional<std::string> DecodeString() {
    std::vector<uint32_t> cps;
    SkipSpace();
    if (!String(cps)) return std::nullopt;
    SkipSpace();
    if (pos_ != text_.size()) return std::nullopt;
    std::string out;
    for (uint32_t cp : cps) AppendUtf8(cp, out);
    return out;
  }

 private:
  static constexpr int kMaxDepth = 200;

  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r' || text_[pos_] == '\t')) {
      ++pos_;
    }
  }

  bool Consume(absl::string_view word) {
    if (!absl::StartsWith(text_.substr(pos_), word)) return false;
    pos_ += word.size();
    return true;
  }

  bool Value(std::string& out, int depth) {
    if (depth > kMaxDepth || pos_ >= text_.size()) return false;
    const char c = text_[pos_];
    if (c == '{') return Object(out, depth);
    if (c == '[') return Array(out, depth);
    if (c == '"') {
      std::vector<uint32_t> cps;
      if (!String(cps)) return false;
      out += '"';
      for (uint32_t cp : cps) AppendPythonJsonChar(cp, out);
      out += '"';
      return true;
    }
    for (absl::string_view word : {"true", "false", "null", "NaN", "Infinity", "-Infinity"}) {
      if (Consume(word)) {
        out.append(word.data(), word.size());
        return true;
      }
    }
    return Number(out);
  }

  bool Object(std::string& out, int depth) {
    ++pos_;  // '{'
    out += '{';
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      out += '}';
      return true;
    }
    while (true) {
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != '"') return false;
      if (!Value(out, depth + 1)) return false;
      SkipSpace();
      if (!Consume(":")) return false;
      out += ": ";
      SkipSpace();
      if (!Value(out, depth + 1)) return false;
      SkipSpace();
      if (Consume("}")) break;
      if (!Consume(",")) return false;
      out += ", ";
    }
    out += '}';
    return true;
  }

  bool Array(std::string& out, int depth) {
    ++pos_;  // '['
    out += '[';
    SkipSpace();
    if (Consume("]")) {
      out += ']';
      return true;
    }
    while (true) {
      SkipSpace();
      if (!Value(out, depth + 1)) return false;
      SkipSpace();
      if (Consume("]")) break;
      if (!Consume(",")) return false;
      out += ", ";
    }
    out += ']';
    return true;
  }

  bool Number(std::string& out) {
    const size_t start = pos_;
    auto digits = [&] {
      const size_t from = pos_;
      while (pos_ < text_.size() && absl::ascii_isdigit(text_[pos_])) ++pos_;
      return pos_ > from;
    };
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    if (!digits()) return false;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      if (!digits()) return false;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (!digits()) return false;
    }
    out.append(text_.data() + start, pos_ - start);
    return true;
  }

  bool Hex4(uint32_t& value) {
    if (pos_ + 4 > text_.size()) return false;
    value = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = text_[pos_++];
      value <<= 4;
      if (h >= '0' && h <= '9') {
        value |= static_cast<uint32_t>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        value |= static_cast<uint32_t>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        value |= static_cast<uint32_t>(h - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }

  // A string literal at pos_, as code points. Bytes that are not valid UTF-8
  // are taken one by one as U+0080..U+00FF.
  bool String(std::vector<uint32_t>& cps) {
    if (pos_ >= text_.size() || text_[pos_] != '"') return false;
    ++pos_;
    while (pos_ < text_.size()) {
      const unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++pos_ >= text_.size()) return false;
        const char e = text_[pos_++];
        switch (e) {
          case '"':
          case '\\':
          case '/':
            cps.push_back(static_cast<uint32_t>(e));
            break;
          case 'b':
            cps.push_back('\b');
            break;
          case 'f':
            cps.push_back('\f');
            break;
          case 'n':
            cps.push_back('\n');
            break;
          case 'r':
            cps.push_back('\r');
            break;
          case 't':
            cps.push_back('\t');
            break;
          case 'u': {
            uint32_t cp = 0;
            if (!Hex4(cp)) return false;
            if (cp >= 0xD800 && cp < 0xDC00 && absl::StartsWith(text_.substr(pos_), "\\u")) {
              const size_t save = pos_;
              pos_ += 2;
              uint32_t low = 0;
              if (Hex4(low) && low >= 0xDC00 && low < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
              } else {
                pos_ = save;
              }
            }
            cps.push_back(cp);
            break;
          }
          default:
            return false;
        }
        continue;
      }
      // A UTF-8 sequence.
      int extra = 0;
      uint32_t cp = c;
      if (c >= 0xF0 && c < 0xF5) {
        extra = 3;
        cp = c & 0x07;
      } else if (c >= 0xE0) {
        extra = c < 0xF0 ? 2 : -1;
        cp = c & 0x0F;
      } else if (c >= 0xC2) {
        extra = 1;
        cp = c & 0x1F;
      } else if (c >= 0x80) {
        extra = -1;
      }
      bool valid = extra >= 0 && pos_ + extra < text_.size();
      for (int i = 1; valid && i <= extra; ++i) {
        const unsigned char cc = static_cast<unsigned char>(text_[pos_ + i]);
        if ((cc & 0xC0) != 0x80) valid = false;
        cp = (cp << 6) | (cc & 0x3F);
      }
      if (valid) {
        cps.push_back(cp);
        pos_ += 1 + extra;
      } else {
        cps.push_back(c);
        ++pos_;
      }
    }
    return false;
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

// --- Python repr, for the Failed Tests Summary ------------------------------

// repr(text) for a Python str: single quotes unless the text has a single
// quote and no double quote.
std::string PythonRepr(absl::string_view text) {
  const char quote = absl::StrContains(text, '\'') && !absl::StrContains(text, '"') ? '"' : '\'';
  std::string out(1, quote);
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      absl::StrAppendFormat(&out, "\\x%02x", u);
    } else {
      out += c;
    }
  }
  out += quote;
  return out;
}

std::string PythonListRepr(const std::vector<std::string>& items) {
  std::vector<std::string> reprs;
  reprs.reserve(items.size());
  for (const std::string& item : items) reprs.push_back(PythonRepr(item));
  return absl::StrCat("[", absl::StrJoin(reprs, ", "), "]");
}

// --- The report -------------------------------------------------------------

// pat's failed_tests: rule id -> entries, in order of first insertion.
class FailedTests {
 public:
  void Add(const std::string& id, std::string entry) {
    auto [it, inserted] = index_.emplace(id, entries_.size());
    if (inserted) entries_.emplace_back(id, std::vector<std::string>());
    entries_[it->second].second.push_back(std::move(entry));
  }
  bool Has(const std::string& id) const { return index_.count(id) > 0; }
  int size() const { return static_cast<int>(entries_.size()); }
  const std::vector<std::pair<std::string, std::vector<std::string>>>& entries() const {
    return entries_;
  }

 private:
  std::map<std::string, size_t> index_;
  std::vector<std::pair<std::string, std::vector<std::string>>> entries_;
};

// A null stream, for tallying without printing.
class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

class ReportPrinter {
 public:
  ReportPrinter(const v1::TestReport& report, const TestPrintOptions& options, std::ostream& out)
      : report_(report), options_(options), out_(out) {}

  TestTally Print() {
    for (const v1::RuleTestResult& rule : report_.rules()) {
      if (!options_.show_failures_only) out_ << Safe(rule.rule_id()) << '\n';
      CheckCoverageBefore(rule);
      if (rule.tests().empty()) {
        out_ << "\tNo tests configured for " << Safe(rule.rule_id()) << '\n';
      } else {
        if (!options_.show_failures_only) {
          for (const v1::TestCaseResult& test : rule.tests()) PrintTest(rule.rule_id(), test);
        }
        CheckCoverageAfter(rule);
      }
      if (!options_.show_failures_only) out_ << '\n';
    }
    if (options_.show_failures_only) PrintFailuresOnly();
    return PrintSummary();
  }

 private:
  // Text from the server (rule ids, test names, outputs, error messages) with
  // control and bidirectional characters escaped; line breaks and tabs stay.
  static std::string Safe(absl::string_view text) { return EscapeLinesForTerminal(text); }

  std::string Status(bool pass) const {
    const char* word = pass ? "PASS" : "FAIL";
    if (!options_.color) return word;
    return absl::StrCat(pass ? kGreen : kRed, word, kReset);
  }

  // pat's run_tests, before the tests run.
  void CheckCoverageBefore(const v1::RuleTestResult& rule) {
    if (rule.tests_size() < options_.minimum_tests) {
      failed_.Add(rule.rule_id(),
                  absl::StrCat("Insufficient test coverage: ", options_.minimum_tests,
                               " tests required but only ", rule.tests_size(), " found"));
    }
  }

  // pat's run_tests, after the tests ran (not for rules without tests).
  void CheckCoverageAfter(const v1::RuleTestResult& rule) {
    if (options_.minimum_tests <= 1) return;
    bool positive = false, negative = false;
    for (const v1::TestCaseResult& test : rule.tests()) {
      (test.expected_result() ? positive : negative) = true;
    }
    if (!positive || !negative) {
      failed_.Add(rule.rule_id(),
                  "Insufficient test coverage: expected at least one positive and one negative "
                  "test");
    }
  }

  // pat's _print_test_result.
  void PrintTest(const std::string& rule_id, const v1::TestCaseResult& test) {
    const bool passed = test.outcome() == v1::TestCaseResult::OUTCOME_PASSED;
    out_ << '\t' << '[' << Status(passed) << "] " << Safe(test.name()) << '\n';

    std::vector<const v1::FunctionResult*> functions;
    for (const v1::FunctionResult& function : test.functions()) {
      // pat shows the other functions only for tests expected to match.
      // Names pat does not know (e.g. a failed "mocks" setup) always show.
      const size_t rank = FunctionRank(function.function());
      if (!test.expected_result() && rank != 0 && rank < kFunctionCount) continue;
      functions.push_back(&function);
    }
    std::stable_sort(functions.begin(), functions.end(),
                     [](const v1::FunctionResult* a, const v1::FunctionResult* b) {
                       return FunctionRank(a->function()) < FunctionRank(b->function());
                     });

    bool recorded = false;
    for (const v1::FunctionResult* function : functions) {
      const std::string label = FunctionLabel(function->function());
      const bool raised = function->has_error() && (!function->error().type().empty() ||
                                                    !function->error().message().empty());
      if (raised) {
        const v1::RuleError& error = function->error();
        const std::string message = error.type().empty()
                                        ? error.message()
                                        : absl::StrCat(error.type(), ": ", error.message());
        out_ << "\t\t[" << Status(false) << "] [" << Safe(label) << "] " << Safe(message) << '\n';
        failed_.Add(rule_id, absl::StrCat(test.name(), ":", label));
        recorded = true;
        continue;
      }
      std::optional<std::string> output = FormatFunctionOutput(function->output_json());
      if (!output.has_value()) continue;  // Returned None: pat prints nothing.
      const bool matched = FunctionRank(function->function()) != 0 ||
                           *output == (test.expected_result() ? "true" : "false");
      out_ << "\t\t[" << Status(matched) << "] [" << Safe(label) << "] " << Safe(*output) << '\n';
      if (!matched) {
        failed_.Add(rule_id, absl::StrCat(test.name(), ":", label));
        recorded = true;
      }
    }
    // pat records the bare test name when running the test itself failed.
    if (!passed && !recorded) failed_.Add(rule_id, test.name());
  }

  // pat with --show-failures-only: the failing tests, by rule id.
  void PrintFailuresOnly() {
    std::vector<const v1::RuleTestResult*> rules;
    for (const v1::RuleTestResult& rule : report_.rules()) rules.push_back(&rule);
    std::stable_sort(rules.begin(), rules.end(),
                     [](const v1::RuleTestResult* a, const v1::RuleTestResult* b) {
                       return a->rule_id() < b->rule_id();
                     });
    for (const v1::RuleTestResult* rule : rules) {
      bool header = false;
      for (const v1::TestCaseResult& test : rule->tests()) {
        if (test.outcome() == v1::TestCaseResult::OUTCOME_PASSED) continue;
        if (!header) out_ << Safe(rule->rule_id()) << '\n';
        header = true;
        PrintTest(rule->rule_id(), test);
        out_ << '\n';
      }
    }
  }

  void Entry(absl::string_view heading, absl::string_view detail) {
    out_ << '\t' << Safe(heading) << "\n\t\t" << Safe(detail) << "\n\n";
  }

  TestTally PrintSummary() {
    TestTally tally;

    std::vector<const v1::Diagnostic*> warnings;
    // Error diagnostics grouped by file, files in order of appearance.
    std::vector<std::pair<std::string, std::vector<std::string>>> invalid;
    std::map<std::string, size_t> invalid_index;
    for (const v1::Diagnostic& diagnostic : report_.invalid()) {
      if (IsWarningDiagnostic(diagnostic)) {
        warnings.push_back(&diagnostic);
        continue;
      }
      if (diagnostic.file().empty()) {
        invalid.emplace_back("-", std::vector<std::string>{FormatDiagnostic(diagnostic)});
        continue;
      }
      auto [it, inserted] = invalid_index.emplace(diagnostic.file(), invalid.size());
      if (inserted) invalid.emplace_back(diagnostic.file(), std::vector<std::string>());
      invalid[it->second].second.push_back(FormatDiagnostic(diagnostic));
    }

    if (!warnings.empty()) {
      out_ << kSeparator << "Warnings\n";
      for (const v1::Diagnostic* warning : warnings)
        out_ << '\t' << Safe(FormatDiagnostic(*warning)) << '\n';
      out_ << '\n';
    }

    bool skipped_header = false;
    for (const v1::SkippedContent& skipped : report_.skipped()) {
      if (!skipped_header) out_ << kSeparator << "Skipped Tests Summary\n";
      skipped_header = true;
      const std::string detail =
          skipped.analysis_type() == kDisabledRuleType
              ? std::string("rule: disabled (--skip-disabled-tests)")
              : absl::StrCat(skipped.analysis_type(), ": not run by pantherd");
      if (skipped.files().empty()) {
        Entry(absl::StrCat(skipped.count(), " file(s)"), detail);
        tally.skipped += skipped.count();
        continue;
      }
      for (const std::string& file : skipped.files()) Entry(file, detail);
      tally.skipped += skipped.files_size();
    }

    if (failed_.size() > 0) {
      out_ << kSeparator << "Failed Tests Summary\n";
      for (const auto& [id, entries] : failed_.entries()) Entry(id, PythonListRepr(entries));
    }

    if (!invalid.empty()) {
      out_ << kSeparator << "Invalid Tests Summary\n";
      for (const auto& [file, details] : invalid) {
        Entry(file, absl::StrJoin(details, "\n\t\t"));
      }
    }

    tally.failed = failed_.size();
    tally.invalid = static_cast<int>(invalid.size());
    tally.warnings = static_cast<int>(warnings.size());
    for (const v1::RuleTestResult& rule : report_.rules()) {
      if (!failed_.Has(rule.rule_id())) ++tally.passed;
      for (const v1::TestCaseResult& test : rule.tests()) {
        ++(test.outcome() == v1::TestCaseResult::OUTCOME_PASSED ? tally.tests_passed
                                                                : tally.tests_failed);
      }
    }
    for (const v1::Diagnostic& diagnostic : report_.invalid()) {
      if (IsWarningDiagnostic(diagnostic)) continue;
      if (absl::StrContains(diagnostic.message(), "ModuleNotFoundError: ") ||
          absl::StrContains(diagnostic.message(), "ImportError: ")) {
        ++tally.import_errors;
      }
    }
    out_ << kSeparator << "Test Summary\n"
         << "\tPath: " << Safe(options_.path) << '\n'
         << "\tPassed: " << tally.passed << '\n'
         << "\tSkipped: " << tally.skipped << '\n'
         << "\tFailed: " << tally.failed << '\n'
         << "\tInvalid: " << tally.invalid << '\n'
         << "\tTests: " << tally.tests_passed << " passed, " << tally.tests_failed << " failed\n";
    if (tally.import_errors > 0) out_ << "\tImport errors: " << tally.import_errors << '\n';
    out_ << '\n';
    return tally;
  }

  const v1::TestReport& report_;
  const TestPrintOptions& options_;
  std::ostream& out_;
  FailedTests failed_;
};

}  // namespace

bool IsEmptyReport(const v1::TestReport& report) {
  return report.rules().empty() && report.invalid().empty() && report.skipped().empty();
}

TestTally PrintTestReport(const v1::TestReport& report, const TestPrintOptions& options,
                          std::ostream& out) {
  return ReportPrinter(report, options, out).Print();
}

TestTally TallyTestReport(const v1::TestReport& report, int minimum_tests) {
  NullBuffer buffer;
  std::ostream null(&buffer);
  TestPrintOptions options;
  options.minimum_tests = minimum_tests;
  return PrintTestReport(report, options, null);
}

std::string TestSummaryJson(const TestTally& tally, absl::string_view path) {
  return JsonObject()
      .AddString("path", path)
      .AddInt("passed", tally.passed)
      .AddInt("skipped", tally.skipped)
      .AddInt("failed", tally.failed)
      .AddInt("invalid", tally.invalid)
      .AddInt("warnings", tally.warnings)
      .AddInt("testsPassed", tally.tests_passed)
      .AddInt("testsFailed", tally.tests_failed)
      .AddInt("importErrors", tally.import_errors)
      .ToString();
}

std::string FunctionLabel(absl::string_view function) {
  const size_t rank = FunctionRank(function);
  if (rank < kFunctionCount) return std::string(kFunctions[rank].second);
  return std::string(function);
}

std::optional<std::string> FormatFunctionOutput(absl::string_view output_json) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(output_json);
  if (trimmed.empty() || trimmed == "null") return std::nullopt;
  if (trimmed.front() == '"') {
    if (std::optional<std::string> text = JsonRewriter(trimmed).DecodeString()) return text;
  }
  if (std::optional<std::string> json = JsonRewriter(trimmed).Rewrite()) return json;
  return std::string(output_json);
}

std::string FormatDiagnostic(const v1::Diagnostic& diagnostic) {
  std::string text = diagnostic.file();
  if (diagnostic.line() > 0) {
    absl::StrAppend(&text, text.empty() ? "line " : ":", diagnostic.line());
  }
  for (const std::string* part : {&diagnostic.field(), &diagnostic.message()}) {
    if (part->empty()) continue;
    absl::StrAppend(&text, text.empty() ? "" : ": ", *part);
  }
  return text;
}

bool IsWarningDiagnostic(const v1::Diagnostic& diagnostic) {
  return absl::StartsWith(diagnostic.message(), "warning: ");
}

}  // namespace pantherd::client
