// `pantherctl sources ...` against an in-process fake DetectionService.
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/fake_pantherd.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace pantherd::client {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::pantherd::v1;
using google::protobuf::util::TimeUtil;
using ::pantherd::client::testing::CliResult;
using ::pantherd::client::testing::FakeDetectionService;
using ::pantherd::client::testing::FakePantherd;
using ::pantherd::client::testing::RunPantherctl;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

class SourcesCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    dir_ = fs::temp_directory_path() /
           absl::StrCat("pantherctl_sources_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    token_file_ = (dir_ / "token").string();
    std::ofstream(token_file_) << "  00secretTOKEN-abc\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  CliResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server_.address()});
    return RunPantherctl(args);
  }

  FakeDetectionService detection_;
  FakePantherd server_{{&detection_}};
  fs::path dir_;
  std::string token_file_;
};

TEST_F(SourcesCommandsTest, AddOktaSendsTheConfigAndNeverPrintsTheToken) {
  const absl::Time before = absl::Now();
  CliResult r =
      Run({"sources", "add", "okta", "--label", "prod", "--domain", "acme.okta.com", "--token-file",
           token_file_, "--since", "2h", "--interval", "90s", "--base-url", "http://127.0.0.1:9"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_THAT(detection_.add_source_requests, SizeIs(1));
  const v1::AddSourceRequest& req = detection_.add_source_requests[0];
  EXPECT_EQ(req.label(), "prod");
  EXPECT_EQ(req.okta().domain(), "acme.okta.com");
  EXPECT_EQ(req.okta().api_token(), "00secretTOKEN-abc");  // Whitespace stripped.
  EXPECT_EQ(req.okta().base_url(), "http://127.0.0.1:9");
  EXPECT_EQ(TimeUtil::DurationToSeconds(req.okta().poll_interval()), 90);
  const absl::Time since =
      absl::FromUnixSeconds(TimeUtil::TimestampToSeconds(req.okta().start_time()));
  EXPECT_GE(since, before - absl::Hours(2) - absl::Seconds(2));
  EXPECT_LE(since, absl::Now() - absl::Hours(2) + absl::Seconds(2));
  EXPECT_THAT(r.out, HasSubstr("src_1"));
  EXPECT_THAT(r.out, HasSubstr("ACTIVE"));
  EXPECT_THAT(r.out, HasSubstr("1m30s"));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr("00secretTOKEN")));

  r = Run({"--output", "json", "sources", "add", "okta", "--label", "p2", "--domain", "a.okta.com",
           "--token-file", token_file_, "--since", "2026-03-01T10:00:00Z"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(TimeUtil::TimestampToSeconds(detection_.add_source_requests[1].okta().start_time()),
            absl::ToUnixSeconds(
                absl::FromCivil(absl::CivilSecond(2026, 3, 1, 10, 0, 0), absl::UTCTimeZone())));
  EXPECT_FALSE(detection_.add_source_requests[1].okta().has_poll_interval());
  EXPECT_THAT(r.out, HasSubstr("\"label\": \"p2\""));
  EXPECT_THAT(r.out, Not(HasSubstr("00secretTOKEN")));
}

TEST_F(SourcesCommandsTest, AddPrintsAssumptionsAndTheCheckAndNoCheckSkipsIt) {
  detection_.add_source_assumptions = {"assumed acme.okta.com for \"acme\""};
  CliResult r = Run({"sources", "add", "okta", "--label", "prod", "--domain", "acme",
                     "--token-file", token_file_});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "pantherctl: note: assumed acme.okta.com for \"acme\"\n");
  EXPECT_THAT(r.out, ::testing::ContainsRegex("Check: +OK\n"));
  r = Run({"sources", "add", "okta", "--label", "p2", "--domain", "acme.okta.com", "--token-file",
           token_file_, "--no-check"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("Check:")));
  ASSERT_THAT(detection_.add_source_requests, SizeIs(2));
  EXPECT_FALSE(detection_.add_source_requests[0].skip_connection_check());
  EXPECT_TRUE(detection_.add_source_requests[1].skip_connection_check());

  // A refused check is the server's error, one line.
  detection_.sources_error =
      grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                   "okta: token rejected by https://acme.okta.com (HTTP 401 E0000011: Invalid "
                   "token provided); nothing was stored");
  r = Run({"sources", "add", "okta", "--label", "p3", "--domain", "acme.okta.com", "--token-file",
           token_file_});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("token rejected by https://acme.okta.com"));
}

TEST_F(SourcesCommandsTest, TestReportsTheCheckAndFailsWhenItFails) {
  v1::TestSourceResponse& answer = detection_.test_source_response;
  answer.mutable_source()->set_id("src_1");
  answer.mutable_source()->set_label("prod");
  answer.mutable_source()->set_domain("acme.okta.com");
  answer.mutable_check()->set_ok(true);
  answer.mutable_check()->set_cause("ok");
  answer.mutable_check()->set_message("Okta at https://acme.okta.com accepted the token");
  answer.mutable_check()->set_http_status(200);
  *answer.mutable_check()->mutable_latency() = TimeUtil::MillisecondsToDuration(42);
  CliResult r = Run({"sources", "test", "prod"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::ContainsRegex("Check: +OK \\(ok\\)\n"));
  EXPECT_THAT(r.out, HasSubstr("accepted the token"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("Latency: +42ms\n"));
  ASSERT_THAT(detection_.test_source_requests, SizeIs(1));
  EXPECT_EQ(detection_.test_source_requests[0].id(), "prod");

  answer.mutable_check()->set_ok(false);
  answer.mutable_check()->set_cause("token_rejected");
  answer.mutable_check()->set_message("token rejected by https://acme.okta.com (HTTP 401)");
  r = Run({"sources", "test", "src_1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, ::testing::ContainsRegex("Check: +FAILED \\(token_rejected\\)\n"));
  EXPECT_THAT(r.err, HasSubstr("connection check failed: token rejected by"));
  r = Run({"--output", "json", "sources", "test", "src_1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("\"cause\": \"token_rejected\""));
}

TEST_F(SourcesCommandsTest, BadArgumentsFailBeforeCallingTheServer) {
  CliResult r = Run({"sources", "add", "okta", "--label", "prod", "--domain", "acme.okta.com",
                     "--token-file", (dir_ / "missing").string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("--token-file"));
  std::ofstream((dir_ / "empty").string()) << "\n";
  r = Run({"sources", "add", "okta", "--label", "prod", "--domain", "acme.okta.com", "--token-file",
           (dir_ / "empty").string()});
  EXPECT_THAT(r.err, HasSubstr("is empty"));
  r = Run({"sources", "add", "okta", "--label", "prod", "--domain", "acme.okta.com", "--token-file",
           token_file_, "--interval", "often"});
  EXPECT_THAT(r.err, HasSubstr("--interval"));
  r = Run({"sources", "add", "okta", "--label", "prod", "--domain", "acme.okta.com", "--token-file",
           token_file_, "--since", "last week"});
  EXPECT_THAT(r.err, HasSubstr("--since"));
  r = Run({"sources", "add", "okta", "--domain", "acme.okta.com", "--token-file", token_file_});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--label"));
  EXPECT_TRUE(detection_.add_source_requests.empty());
}

TEST_F(SourcesCommandsTest, ServerErrorsAreShown) {
  detection_.sources_error =
      grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "label: a source labelled \"prod\" exists");
  CliResult r = Run({"sources", "add", "okta", "--label", "prod", "--domain", "acme.okta.com",
                     "--token-file", token_file_});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("exists"));
}

TEST_F(SourcesCommandsTest, PauseResumeWithTokenRemoveAndList) {
  CliResult r = Run({"sources", "pause", "prod"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("PAUSED"));
  r = Run({"sources", "resume", "prod", "--token-file", token_file_});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ACTIVE"));
  ASSERT_THAT(detection_.set_paused_requests, SizeIs(2));
  EXPECT_TRUE(detection_.set_paused_requests[0].paused());
  EXPECT_EQ(detection_.set_paused_requests[0].api_token(), "");
  EXPECT_FALSE(detection_.set_paused_requests[1].paused());
  EXPECT_EQ(detection_.set_paused_requests[1].api_token(), "00secretTOKEN-abc");
  EXPECT_THAT(r.out, Not(HasSubstr("00secretTOKEN")));

  r = Run({"sources", "remove", "src_9"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Removed source src_9\n");
  ASSERT_THAT(detection_.remove_source_requests, SizeIs(1));
  EXPECT_EQ(detection_.remove_source_requests[0].id(), "src_9");

  v1::Source s;
  s.set_id("src_1");
  s.set_label("prod");
  s.set_kind("okta");
  s.set_state(v1::SOURCE_STATE_ERROR);
  s.set_domain("acme.okta.com");
  s.set_events_ingested(42);
  s.set_last_error("HTTP 401 E0000011: Invalid token provided");
  *s.mutable_lag() = TimeUtil::SecondsToDuration(75);
  detection_.sources = {s};
  r = Run({"sources", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ERROR"));
  EXPECT_THAT(r.out, HasSubstr("42"));
  EXPECT_THAT(r.out, HasSubstr("1m15s"));
  EXPECT_THAT(r.out, HasSubstr("E0000011"));
}

}  // namespace
}  // namespace pantherd::client
