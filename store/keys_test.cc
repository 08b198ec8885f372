#include "store/keys.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/base/status_macros.h"

namespace pantherd::store {
namespace {

using ::testing::ElementsAre;

// Suite named after the test binary so `ctest -R keys` selects these cases.
class keys_test : public ::testing::Test {};

std::vector<uint64_t> InterestingUint64s() {
  std::vector<uint64_t> v = {0,
                             1,
                             2,
                             127,
                             128,
                             255,
                             256,
                             65535,
                             65536,
                             (uint64_t{1} << 32) - 1,
                             uint64_t{1} << 32,
                             (uint64_t{1} << 63) - 1,
                             uint64_t{1} << 63,
                             std::numeric_limits<uint64_t>::max() - 1,
                             std::numeric_limits<uint64_t>::max()};
  std::mt19937_64 rng(42);
  for (int i = 0; i < 500; ++i) v.push_back(rng() >> (rng() % 64));
  return v;
}

std::vector<int64_t> InterestingInt64s() {
  std::vector<int64_t> v = {std::numeric_limits<int64_t>::min(),
                            std::numeric_limits<int64_t>::min() + 1,
                            -(int64_t{1} << 32),
                            -256,
                            -255,
                            -1,
                            0,
                            1,
                            255,
                            256,
                            int64_t{1} << 32,
                            std::numeric_limits<int64_t>::max() - 1,
                            std::numeric_limits<int64_t>::max()};
  std::mt19937_64 rng(7);
  for (int i = 0; i < 500; ++i) v.push_back(static_cast<int64_t>(rng()) >> (rng() % 64));
  return v;
}

TEST_F(keys_test, Uint64IsBigEndian) {
  EXPECT_EQ(EncodeUint64(0x0102030405060708), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(EncodeUint64(0), std::string(8, '\0'));
  std::string dst = "p";
  AppendUint64(&dst, 1);
  EXPECT_EQ(dst, std::string("p\0\0\0\0\0\0\0\x01", 9));
}

TEST_F(keys_test, Uint64RoundTripsAndByteOrderMatchesNumericOrder) {
  std::vector<uint64_t> values = InterestingUint64s();
  for (uint64_t v : values) {
    absl::StatusOr<uint64_t> decoded = DecodeUint64(EncodeUint64(v));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, v);
  }
  for (size_t i = 0; i + 1 < values.size(); ++i) {
    const uint64_t a = values[i], b = values[i + 1];
    EXPECT_EQ(a < b, EncodeUint64(a) < EncodeUint64(b)) << a << " vs " << b;
    EXPECT_EQ(a == b, EncodeUint64(a) == EncodeUint64(b)) << a << " vs " << b;
  }
}

TEST_F(keys_test, Int64RoundTripsAndByteOrderMatchesNumericOrder) {
  std::vector<int64_t> values = InterestingInt64s();
  for (int64_t v : values) {
    absl::StatusOr<int64_t> decoded = DecodeInt64(EncodeInt64(v));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, v);
  }
  // Sorting by encoding must give numeric order.
  std::vector<std::pair<std::string, int64_t>> encoded;
  for (int64_t v : values) encoded.emplace_back(EncodeInt64(v), v);
  std::sort(encoded.begin(), encoded.end());
  for (size_t i = 0; i + 1 < encoded.size(); ++i) {
    EXPECT_LE(encoded[i].second, encoded[i + 1].second);
  }
  EXPECT_EQ(EncodeInt64(std::numeric_limits<int64_t>::min()), std::string(8, '\0'));
  EXPECT_EQ(EncodeInt64(std::numeric_limits<int64_t>::max()), std::string(8, '\xff'));
  EXPECT_LT(EncodeInt64(-1), EncodeInt64(0));
}

TEST_F(keys_test, DecodersRejectWrongSizes) {
  for (absl::string_view bad :
       {absl::string_view(""), absl::string_view("1234567"), absl::string_view("123456789")}) {
    EXPECT_EQ(DecodeUint64(bad).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(DecodeInt64(bad).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ParseSequenceKey(bad).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(keys_test, JoinAndSplit) {
  const std::string key = Join("okta", "evt-1");
  EXPECT_EQ(key, std::string("okta\0evt-1", 10));
  EXPECT_EQ(Join("a"), "a");
  EXPECT_EQ(Join(std::string("id"), ""), std::string("id\0", 3));

  absl::StatusOr<std::vector<absl::string_view>> parts = Split(key, 2);
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_THAT(*parts, ElementsAre("okta", "evt-1"));

  // The last part keeps any separators it contains.
  const std::string three = Join("rule", "dedup", std::string("x\0y", 3));
  parts = Split(three, 3);
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_THAT(*parts, ElementsAre("rule", "dedup", absl::string_view("x\0y", 3)));
  parts = Split(three, 2);
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ((*parts)[1], absl::string_view("dedup\0x\0y", 9));

  EXPECT_EQ(Split("no-separator", 2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Split(key, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(keys_test, ValidateKeyPart) {
  EXPECT_TRUE(ValidateKeyPart("AWS.Root.Login", "rule id").ok());
  absl::Status empty = ValidateKeyPart("", "rule id");
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(empty.message()), ::testing::HasSubstr("rule id"));
  EXPECT_EQ(ValidateKeyPart(absl::string_view("a\0b", 3), "rule id").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(keys_test, PrefixSuccessor) {
  EXPECT_EQ(PrefixSuccessor("abc"), "abd");
  EXPECT_EQ(PrefixSuccessor(std::string("a\xff\xff", 3)), "b");
  EXPECT_EQ(PrefixSuccessor(std::string("a\0", 2)), std::string("a\x01", 2));
  EXPECT_EQ(PrefixSuccessor(""), "");
  EXPECT_EQ(PrefixSuccessor("\xff\xff"), "");
  // Every key with the prefix sorts below the successor.
  const std::string prefix = RuleVersionPrefix("r");
  EXPECT_LT(RuleVersionKey("r", std::numeric_limits<int64_t>::max()), PrefixSuccessor(prefix));
  EXPECT_GE(RuleVersionKey("r", 0), prefix);
}

TEST_F(keys_test, RuleVersionKeysRoundTrip) {
  const std::string key = RuleVersionKey("AWS.Root.Login", 3);
  EXPECT_EQ(key, std::string("AWS.Root.Login\0\0\0\0\0\0\0\0\x03", 23));
  absl::StatusOr<RuleVersionKeyParts> parts = ParseRuleVersionKey(key);
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_EQ(parts->id, "AWS.Root.Login");
  EXPECT_EQ(parts->version, 3);

  EXPECT_FALSE(ParseRuleVersionKey("no-separator").ok());
  EXPECT_FALSE(ParseRuleVersionKey(Join("id", "short")).ok());
  EXPECT_FALSE(ParseRuleVersionKey(Join("", EncodeUint64(1))).ok());
  EXPECT_FALSE(ParseRuleVersionKey(Join("id", EncodeUint64(uint64_t{1} << 63))).ok());
}

// Composite keys sort by id first (ids that are prefixes of others included),
// then by version numerically: the order RocksDB scans them in.
TEST_F(keys_test, RuleVersionKeysSortByIdThenVersion) {
  const std::vector<std::string> ids = {"a", std::string("a\x01"), "a.b", "aa", "b", "\xff"};
  const std::vector<int64_t> versions = {
      0, 1, 2, 255, 256, 65536, std::numeric_limits<int64_t>::max()};
  std::vector<std::tuple<std::string, std::string, int64_t>> rows;  // key, id, version
  for (const std::string& id : ids) {
    for (int64_t v : versions) rows.emplace_back(RuleVersionKey(id, v), id, v);
  }
  std::mt19937 rng(1);
  std::shuffle(rows.begin(), rows.end(), rng);
  std::sort(rows.begin(), rows.end());  // by encoded key
  for (size_t i = 0; i + 1 < rows.size(); ++i) {
    const auto& [ka, ida, va] = rows[i];
    const auto& [kb, idb, vb] = rows[i + 1];
    EXPECT_TRUE(std::tie(ida, va) < std::tie(idb, vb))
        << "(" << ida << "," << va << ") sorted before (" << idb << "," << vb << ")";
  }
  // And the keys of one id are exactly those under its prefix.
  for (const auto& [key, id, version] : rows) {
    EXPECT_EQ(absl::StartsWith(key, RuleVersionPrefix("a")), id == "a") << id;
  }
}

TEST_F(keys_test, SequenceKeysSortNumerically) {
  EXPECT_LT(SequenceKey(9), SequenceKey(10));
  EXPECT_LT(SequenceKey(255), SequenceKey(256));
  absl::StatusOr<uint64_t> seq = ParseSequenceKey(SequenceKey(123456789));
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 123456789u);
}

TEST_F(keys_test, VarintsRoundTripAndRefuseTruncatedInput) {
  std::string bytes;
  const uint64_t values[] = {0, 1, 127, 128, 300, uint64_t{1} << 35, ~uint64_t{0}};
  for (uint64_t v : values) AppendVarint(&bytes, v);
  EXPECT_EQ(bytes.size(), 1u + 1 + 1 + 2 + 2 + 6 + 10);
  absl::string_view in = bytes;
  for (uint64_t v : values) {
    uint64_t got = 0;
    ASSERT_TRUE(ConsumeVarint(&in, &got));
    EXPECT_EQ(got, v);
  }
  EXPECT_TRUE(in.empty());
  uint64_t got = 0;
  absl::string_view empty;
  EXPECT_FALSE(ConsumeVarint(&empty, &got));
  absl::string_view cut("\x80\x80", 2);  // ends inside a varint
  EXPECT_FALSE(ConsumeVarint(&cut, &got));
  const std::string endless(11, '\xff');  // longer than ten bytes
  absl::string_view too_long = endless;
  EXPECT_FALSE(ConsumeVarint(&too_long, &got));
}

absl::StatusOr<int64_t> VersionOf(absl::string_view key) {
  PANTHERD_ASSIGN_OR_RETURN(RuleVersionKeyParts parts, ParseRuleVersionKey(key));
  PANTHERD_RETURN_IF_ERROR(ValidateKeyPart(parts.id, "rule id"));
  return parts.version;
}

TEST_F(keys_test, StatusMacrosPropagateErrorsAndValues) {
  absl::StatusOr<int64_t> ok = VersionOf(RuleVersionKey("r", 7));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, 7);
  EXPECT_EQ(VersionOf("garbage").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pantherd::store
