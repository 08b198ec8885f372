#include "engine/event_codec.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace pantherd::engine {
namespace {

using ::testing::HasSubstr;

constexpr absl::string_view kOkta = "Okta.SystemLog";

// An Okta-like event; `i` varies its ids, times and some values.
std::string SampleEvent(int i) {
  static const char* const kTypes[] = {"user.session.start", "user.authentication.sso",
                                       "policy.evaluate_sign_on", "user.session.end"};
  static const char* const kCities[] = {"Berlin", "Lisbon", "Austin", "Osaka", "Lima"};
  return absl::StrCat(
      R"({"uuid":"6c2f)", i * 7919, R"(-e0d1-11ee-9b2a-)", 100000 + i,
      R"(","published":"2026-03-01T10:)", i % 60, ":", (i * 13) % 60, ".", (i * 37) % 1000,
      R"(Z","eventType":")", kTypes[i % 4], R"(","version":"0","severity":"INFO",)",
      R"("displayMessage":"User login to Okta","actor":{"id":"00u)", i % 97,
      R"(abcdEFGH5d7","type":"User","alternateId":"user)", i % 97,
      R"(@example.com","displayName":"User )", i % 97,
      R"("},"client":{"userAgent":{"rawUserAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7))",
      R"( AppleWebKit/537.36","os":"Mac OS X","browser":"CHROME"},"zone":"null","device":)",
      R"("Computer","ipAddress":"203.0.)", i % 256, ".", (i * 3) % 256,
      R"(","geographicalContext":{"city":")", kCities[i % 5],
      R"(","country":"Somewhere","geolocation":{"lat":)", i % 90, ".", i % 1000, R"(,"lon":)",
      i % 180, R"(.5}}},"outcome":{"result":"SUCCESS","reason":null},)",
      R"("transaction":{"type":"WEB","id":"Zz)", i * 31, R"(","detail":{}},)",
      R"("p_log_type":"Okta.SystemLog","p_row_id":")", i * 104729, R"(","p_event_time":)",
      R"("2026-03-01 10:00:00.000000000","p_any_ip_addresses":["203.0.)", i % 256, R"("]})");
}

// An event of another shape (field names and values unlike SampleEvent's),
// as when a log type's events change after its dictionary was trained.
std::string OtherShapeEvent(int i) {
  static const char* const kNames[] = {"GetObject", "PutObject", "ListBuckets", "AssumeRole"};
  return absl::StrCat(
      R"({"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDA)", i * 977,
      R"(QX","arn":"arn:aws:iam::123456789012:user/svc-)", i % 41,
      R"(","accountId":"123456789012"},"eventTime":"2026-04-0)", i % 9, "T0", i % 10, ":1", i % 6,
      R"(:00Z","eventSource":"s3.amazonaws.com","eventName":")", kNames[i % 4],
      R"(","awsRegion":"eu-west-)", i % 3, R"(","sourceIPAddress":"10.)", i % 200, ".",
      (i * 7) % 256, R"(.4","userAgent":"aws-cli/2.13.)", i % 30,
      R"( Python/3.11.4 Linux/6.1","requestParameters":{"bucketName":"archive-)", i % 13,
      R"(","key":"year=2026/month=04/part-)", i * 131, R"(.parquet"},"requestID":"RQ)", i * 7907,
      R"(ZZ","eventID":"ev-)", i * 104723, R"(","readOnly":)", i % 2 == 0 ? "true" : "false",
      R"(,"resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::archive-)", i % 13,
      R"(/part"}],"eventType":"AwsApiCall","managementEvent":false,)",
      R"("recipientAccountId":"123456789012"})");
}

class EventCodecTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    absl::StatusOr<std::unique_ptr<store::Store>> s = store::Store::Open(dir_.Sub("data"), {});
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  // Closes and reopens the store (a restart), then checks that each value
  // of `written` (JSON, stored value) reads back as its JSON.
  void ReopenAndCheck(const std::vector<std::pair<std::string, std::string>>& written) {
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    Open();
    EventDecoder decoder(*store_);
    for (const auto& [json, value] : written) {
      absl::StatusOr<absl::string_view> decoded = decoder.Decode(value);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      ASSERT_EQ(*decoded, json);
    }
  }

  pantherd::testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(EventCodecTest, PlainZstdRoundTrip) {
  EventEncoder encoder(store_.get(), {.samples_to_train = 0});
  EventDecoder decoder(*store_);
  std::string value;
  for (int i = 0; i < 50; ++i) {
    const std::string json = SampleEvent(i);
    ASSERT_TRUE(encoder.Encode(kOkta, json, &value).ok());
    EXPECT_EQ(value.front(), kEventValueZstd);
    EXPECT_LT(value.size(), json.size() * 3 / 4);
    absl::StatusOr<absl::string_view> decoded = decoder.Decode(value);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, json);
  }
  EXPECT_FALSE(encoder.DictionaryId(kOkta).has_value());
}

TEST_F(EventCodecTest, RawJsonValuesReadAsTheyAre) {
  EventDecoder decoder(*store_);
  const std::string json = SampleEvent(3);
  absl::StatusOr<absl::string_view> decoded = decoder.Decode(json);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, json);
  EXPECT_EQ(decoded->data(), json.data());  // not copied
}

TEST_F(EventCodecTest, CorruptValuesAreDataLoss) {
  EventEncoder encoder(store_.get(), {.samples_to_train = 0});
  std::string good;
  ASSERT_TRUE(encoder.Encode(kOkta, SampleEvent(1), &good).ok());
  EventDecoder decoder(*store_);
  struct Case {
    std::string value;
    std::string message;
  };
  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x5a;
  const std::vector<Case> cases = {
      {"", "empty"},
      {"[1]", "unknown format byte 0x5b"},
      {std::string("\x03") + good.substr(1), "unknown format byte 0x03"},
      {std::string(1, kEventValueZstd) + "not zstd", "not a zstd frame"},
      {good.substr(0, good.size() - 5), "does not decompress"},
      {std::string(1, kEventValueZstdDictionary) + "\xff\xff", "malformed dictionary id"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<absl::string_view> decoded = decoder.Decode(c.value);
    EXPECT_TRUE(absl::IsDataLoss(decoded.status())) << absl::CHexEscape(c.value);
    EXPECT_THAT(decoded.status().message(), HasSubstr(c.message));
  }
  // A flipped byte in the frame either fails or yields other bytes; it never
  // crashes (RocksDB's block checksums catch corruption on disk).
  (void)decoder.Decode(flipped);
}

TEST_F(EventCodecTest, UnknownDictionaryIsDataLoss) {
  EventDecoder decoder(*store_);
  std::string value(1, kEventValueZstdDictionary);
  value.push_back('\x07');
  value += "\x28\xb5\x2f\xfd";
  absl::StatusOr<absl::string_view> decoded = decoder.Decode(value);
  EXPECT_TRUE(absl::IsDataLoss(decoded.status())) << decoded.status();
  EXPECT_THAT(decoded.status().message(), HasSubstr("dictionary 7"));
}

TEST_F(EventCodecTest, TrainsADictionaryStoresItAndReadsAfterReopen) {
  const EventEncoderOptions options = {.samples_to_train = 300, .dictionary_bytes = 32 << 10};
  std::vector<std::pair<std::string, std::string>> written;  // json, value
  uint64_t id = 0;
  {
    EventEncoder encoder(store_.get(), options);
    std::string value;
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE(encoder.Encode(kOkta, SampleEvent(i), &value).ok());
      EXPECT_EQ(value.front(), kEventValueZstd);
      written.emplace_back(SampleEvent(i), value);
    }
    ASSERT_TRUE(encoder.FinishTraining().ok());
    ASSERT_TRUE(encoder.DictionaryId(kOkta).has_value());
    id = *encoder.DictionaryId(kOkta);
    EXPECT_TRUE(store_->Get(store::Family::kMeta, EventDictionaryKey(id)).ok());
    // Another log type has its own state: no dictionary yet.
    EXPECT_FALSE(encoder.DictionaryId("Other.Log").has_value());
    size_t plain = 0;
    size_t with_dictionary = 0;
    for (int i = 300; i < 400; ++i) {
      const std::string json = SampleEvent(i);
      ASSERT_TRUE(encoder.Encode(kOkta, json, &value).ok());
      ASSERT_EQ(value.front(), kEventValueZstdDictionary);
      with_dictionary += value.size();
      written.emplace_back(json, value);
      EventEncoder no_dictionary(store_.get(), {.samples_to_train = 0});
      ASSERT_TRUE(no_dictionary.Encode("Other.Log", json, &value).ok());
      plain += value.size();
    }
    EXPECT_LT(with_dictionary * 2, plain) << with_dictionary << " vs " << plain;
  }
  ReopenAndCheck(written);
  EventDecoder decoder(*store_);
  // A new encoder over the reopened store uses the stored dictionary.
  EventEncoder encoder(store_.get(), options);
  std::string value;
  ASSERT_TRUE(encoder.Encode(kOkta, SampleEvent(1000), &value).ok());
  EXPECT_EQ(value.front(), kEventValueZstdDictionary);
  EXPECT_EQ(encoder.DictionaryId(kOkta), id);
  absl::StatusOr<absl::string_view> decoded = decoder.Decode(value);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, SampleEvent(1000));
}

// A log type whose events change shape gets a new dictionary trained from
// recent events; one whose events keep their shape does not. Values of both
// dictionaries read after a restart, and the newest is the one in use.
TEST_F(EventCodecTest, RetrainsWhenTheEventsChangeShape) {
  const EventEncoderOptions options = {.samples_to_train = 300,
                                       .dictionary_bytes = 32 << 10,
                                       .drift_window_events = 200,
                                       .retrain_ratio = 1.3,
                                       .retrain_min_events = 600,
                                       .resample_every = 1};
  std::vector<std::pair<std::string, std::string>> written;  // json, value
  uint64_t first = 0;
  uint64_t second = 0;
  {
    EventEncoder encoder(store_.get(), options);
    std::string value;
    auto encode = [&](const std::string& json) {
      ASSERT_TRUE(encoder.Encode(kOkta, json, &value).ok());
      written.emplace_back(json, value);
    };
    for (int i = 0; i < 300; ++i) encode(SampleEvent(i));
    ASSERT_TRUE(encoder.FinishTraining().ok());
    ASSERT_TRUE(encoder.DictionaryId(kOkta).has_value());
    first = *encoder.DictionaryId(kOkta);
    // The same shape, five windows: no retraining.
    for (int i = 300; i < 1300; ++i) encode(SampleEvent(i));
    ASSERT_TRUE(encoder.FinishTraining().ok());
    EXPECT_EQ(encoder.Retrainings(kOkta), 0u);
    EXPECT_EQ(encoder.DictionaryId(kOkta), first);

    // Another shape: the first window of it compresses much worse.
    size_t before = 0;
    for (int i = 0; i < 200; ++i) {
      encode(OtherShapeEvent(i));
      before += value.size();
    }
    ASSERT_TRUE(encoder.FinishTraining().ok());
    EXPECT_EQ(encoder.Retrainings(kOkta), 1u);
    ASSERT_TRUE(encoder.DictionaryId(kOkta).has_value());
    second = *encoder.DictionaryId(kOkta);
    EXPECT_GT(second, first);
    EXPECT_TRUE(store_->Get(store::Family::kMeta, EventDictionaryKey(second)).ok());
    size_t after = 0;
    for (int i = 200; i < 400; ++i) {
      encode(OtherShapeEvent(i));
      ASSERT_EQ(value.front(), kEventValueZstdDictionary);
      after += value.size();
    }
    EXPECT_LT(after * 10, before * 8) << after << " vs " << before;
    // The new dictionary's baseline is its own: no second retraining.
    ASSERT_TRUE(encoder.FinishTraining().ok());
    EXPECT_EQ(encoder.Retrainings(kOkta), 1u);
  }
  ReopenAndCheck(written);
  EventEncoder encoder(store_.get(), options);
  std::string value;
  ASSERT_TRUE(encoder.Encode(kOkta, OtherShapeEvent(1000), &value).ok());
  EXPECT_EQ(encoder.DictionaryId(kOkta), second);
}

TEST_F(EventCodecTest, EncodesFromSeveralThreads) {
  EventEncoder encoder(store_.get(), {.samples_to_train = 100, .dictionary_bytes = 16 << 10});
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> values(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::string value;
      for (int i = 0; i < 200; ++i) {
        if (!encoder.Encode(kOkta, SampleEvent(t * 1000 + i), &value).ok()) return;
        values[t].push_back(value);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(encoder.FinishTraining().ok());
  EventDecoder decoder(*store_);
  for (int t = 0; t < 4; ++t) {
    ASSERT_EQ(values[t].size(), 200u);
    for (int i = 0; i < 200; ++i) {
      absl::StatusOr<absl::string_view> decoded = decoder.Decode(values[t][i]);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(*decoded, SampleEvent(t * 1000 + i));
    }
  }
}

}  // namespace
}  // namespace pantherd::engine
