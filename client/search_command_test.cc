// `pantherctl search` against an in-process fake SearchEvents.
#include <mutex>
#include <string>
#include <vector>

#include "client/fake_pantherd.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;
using google::protobuf::util::TimeUtil;
using ::pantherd::client::testing::CliResult;
using ::pantherd::client::testing::FakePantherd;
using ::pantherd::client::testing::RunPantherctl;
using ::testing::HasSubstr;
using ::testing::Not;

// Answers every search with two columns and three rows of every value type
// (one holding an escape sequence), truncated; or with `error`.
class FakeSearch final : public v1::DetectionService::Service {
 public:
  grpc::Status SearchEvents(grpc::ServerContext*, const v1::SearchEventsRequest* request,
                            grpc::ServerWriter<v1::SearchEventsResponse>* writer) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      requests.push_back(*request);
    }
    if (!error.ok()) return error;
    v1::SearchEventsResponse header;
    header.mutable_header()->add_columns("who");
    header.mutable_header()->add_columns("n");
    *header.mutable_header()->mutable_since() = TimeUtil::SecondsToTimestamp(1772359200);
    *header.mutable_header()->mutable_until() = TimeUtil::SecondsToTimestamp(1772445600);
    writer->Write(header);
    auto row = [&](v1::SearchValue a, v1::SearchValue b) {
      v1::SearchEventsResponse r;
      *r.mutable_row()->add_values() = a;
      *r.mutable_row()->add_values() = b;
      writer->Write(r);
    };
    v1::SearchValue text, evil, null, integer, real;
    text.set_text_value("ann@example.com");
    evil.set_text_value("x\x1b[31mred");
    null.set_null_value(true);
    integer.set_int_value(3);
    real.set_double_value(0.5);
    row(text, integer);
    row(evil, real);
    row(null, null);
    v1::SearchEventsResponse summary;
    summary.mutable_summary()->set_rows(3);
    summary.mutable_summary()->set_truncated(true);
    summary.mutable_summary()->set_events_scanned(42);
    writer->Write(summary);
    return grpc::Status::OK;
  }

  std::mutex mu;
  std::vector<v1::SearchEventsRequest> requests;
  grpc::Status error = grpc::Status::OK;
};

class SearchCommandTest : public ::testing::Test {
 protected:
  CliResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server_.address()});
    return RunPantherctl(args);
  }
  FakeSearch search_;
  FakePantherd server_{{&search_}};
};

TEST_F(SearchCommandTest, TablePrintsRowsThenTheRangeAndTruncation) {
  ASSERT_TRUE(server_.ok());
  CliResult r = Run({"search", "SELECT 1", "--since", "2026-03-01T10:00:00Z", "--until",
                     "2026-03-02T10:00:00Z", "--limit", "3", "--query-timeout", "5"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "who              n\n"
            "ann@example.com  3\n"
            "x\\x1b[31mred     0.5\n"
            "NULL             NULL\n");
  EXPECT_THAT(r.err, HasSubstr("Events from 2026-03-01T10:00:00Z until 2026-03-02T10:00:00Z"));
  EXPECT_THAT(r.err, HasSubstr("3 rows (truncated at the limit)"));
  std::lock_guard<std::mutex> lock(search_.mu);
  ASSERT_EQ(search_.requests.size(), 1u);
  const v1::SearchEventsRequest& req = search_.requests[0];
  EXPECT_EQ(req.sql(), "SELECT 1");
  EXPECT_EQ(req.limit(), 3);
  EXPECT_EQ(req.timeout_seconds(), 5);
  EXPECT_EQ(TimeUtil::TimestampToSeconds(req.since()), 1772359200);
  EXPECT_EQ(TimeUtil::TimestampToSeconds(req.until()), 1772445600);
}

TEST_F(SearchCommandTest, JsonAndCsv) {
  ASSERT_TRUE(server_.ok());
  CliResult r = Run({"--output", "json", "search", "SELECT 1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"columns\": [\"who\",\"n\"]"));
  EXPECT_THAT(r.out, HasSubstr("[\"ann@example.com\",3]"));
  EXPECT_THAT(r.out, HasSubstr("[\"x\\u001b[31mred\",0.5]"));
  EXPECT_THAT(r.out, HasSubstr("[null,null]"));
  EXPECT_THAT(r.out, HasSubstr("\"truncated\": true"));
  EXPECT_THAT(r.out, HasSubstr("\"eventsScanned\": 42"));
  EXPECT_THAT(r.out, HasSubstr("\"since\": \"2026-03-01T10:00:00Z\""));
  EXPECT_THAT(r.out, Not(HasSubstr("\x1b")));

  r = Run({"--output", "csv", "search", "SELECT 1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("who,n\r\nann@example.com,3\r\n"));
  EXPECT_THAT(r.out, HasSubstr("\r\n,\r\n"));  // NULLs are empty fields
  EXPECT_THAT(r.err, HasSubstr("truncated at the limit"));
}

TEST_F(SearchCommandTest, ServerErrorsAndTheQueryTimeout) {
  ASSERT_TRUE(server_.ok());
  search_.error =
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "near \"FRM\": syntax error at offset 9");
  CliResult r = Run({"search", "SELECT 1 FRM x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("near \"FRM\": syntax error at offset 9"));
  search_.error = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                               "the query ran longer than its timeout of 30 s");
  r = Run({"search", "SELECT 1"});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("--query-timeout"));
  // pantherctl's own checks.
  r = Run({"search", "SELECT 1", "--limit", "0"});
  EXPECT_EQ(r.code, 2);
}

}  // namespace
}  // namespace pantherd::client
