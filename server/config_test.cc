#include "server/config.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::server {
namespace {

using ::testing::HasSubstr;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pantherd-config-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteFile(const std::string& name, const std::string& text) {
    std::string path = (std::filesystem::path(dir_) / name).string();
    std::ofstream(path) << text;
    return path;
  }

  absl::StatusOr<ServerConfig> Parse(std::vector<const char*> args) {
    args.insert(args.begin(), "pantherd");
    return ParseServerFlags(static_cast<int>(args.size()), args.data(), out_, err_);
  }

  std::string dir_;
  std::ostringstream out_, err_;
};

TEST_F(ConfigTest, DefaultsWithoutFlags) {
  absl::StatusOr<ServerConfig> c = Parse({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "127.0.0.1:50051");
  EXPECT_EQ(c->log_level, base::LogLevel::kInfo);
  EXPECT_FALSE(c->data_dir.empty());
}

TEST_F(ConfigTest, DefaultDataDirFollowsXdgDataHome) {
  setenv("XDG_DATA_HOME", dir_.c_str(), 1);
  EXPECT_EQ(DefaultDataDir(), (std::filesystem::path(dir_) / "pantherd").string());
  unsetenv("XDG_DATA_HOME");
  EXPECT_EQ(DefaultDataDir(), (std::filesystem::current_path() / ".pantherd").string());
}

TEST_F(ConfigTest, FileValuesApplyAndFlagsWin) {
  std::string path = WriteFile("c.yaml",
                               "listen: 127.0.0.1:6000\n"
                               "data_dir: /srv/pantherd\n"
                               "log_level: debug\n"
                               "shutdown_grace_seconds: 3\n");
  absl::StatusOr<ServerConfig> c = Parse({"--config", path.c_str(), "--listen", "127.0.0.1:7000"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "127.0.0.1:7000");  // The flag wins over the file.
  EXPECT_EQ(c->data_dir, "/srv/pantherd");
  EXPECT_EQ(c->log_level, base::LogLevel::kDebug);
  EXPECT_EQ(c->shutdown_grace_seconds, 3);
}

// Every option reaches its field from the file and from its flag, and the
// flag wins.
TEST_F(ConfigTest, EveryOptionFromFileAndFromFlag) {
  const std::string pem = WriteFile("x.pem", "not read here\n");
  const std::string clock1 = WriteFile("clock1", "1924992000\n");
  const std::string clock2 = WriteFile("clock2", "1924992001\n");
  auto text = [](const auto& value) { return absl::StrCat(value); };
  auto level = [](base::LogLevel l) {
    return l == base::LogLevel::kDebug  ? "debug"
           : l == base::LogLevel::kInfo ? "info"
           : l == base::LogLevel::kWarn ? "warn"
                                        : "error";
  };
  struct Case {
    std::string key;
    std::string in_file;
    std::string in_flag;  // "": no flag in the second parse
    std::function<std::string(const ServerConfig&)> read;
  };
  const std::vector<Case> cases = {
      {"listen", "127.0.0.1:6001", "127.0.0.1:6002", [](const auto& c) { return c.listen; }},
      {"data_dir", "/d1", "/d2", [](const auto& c) { return c.data_dir; }},
      {"rules_dir", "/r1", "/r2", [](const auto& c) { return c.rules_dir; }},
      {"log_level", "warn", "error", [&](const auto& c) { return level(c.log_level); }},
      {"shutdown_grace_seconds", "1", "21",
       [&](const auto& c) { return text(c.shutdown_grace_seconds); }},
      {"executor_threads", "2", "22", [&](const auto& c) { return text(c.executor_threads); }},
      {"executor_queue", "3", "23", [&](const auto& c) { return text(c.executor_queue); }},
      {"workers", "4", "24", [&](const auto& c) { return text(c.workers); }},
      {"rule_timeout_seconds", "5", "25",
       [&](const auto& c) { return text(c.rule_timeout_seconds); }},
      {"worker_memory_mb", "6", "26", [&](const auto& c) { return text(c.worker_memory_mb); }},
      {"worker_binary", "/w1", "/w2", [](const auto& c) { return c.worker_binary; }},
      {"max_event_bytes", "7", "27", [&](const auto& c) { return text(c.max_event_bytes); }},
      {"grpc_memory_quota_mib", "64", "128",
       [&](const auto& c) { return text(c.grpc_memory_quota_mib); }},
      {"window_clock", "processing", "event", [](const auto& c) { return c.window_clock; }},
      {"alert_sample_events", "8", "28",
       [&](const auto& c) { return text(c.alert_sample_events); }},
      {"purge_interval_seconds", "9", "29",
       [&](const auto& c) { return text(c.purge_interval_seconds); }},
      {"processed_retention_seconds", "86400", "172800",
       [&](const auto& c) { return text(c.processed_retention_seconds); }},
      {"window_retention_seconds", "3600", "7200",
       [&](const auto& c) { return text(c.window_retention_seconds); }},
      {"alert_log_retention_seconds", "600", "1200",
       [&](const auto& c) { return text(c.alert_log_retention_seconds); }},
      {"stream_buffer", "10", "30", [&](const auto& c) { return text(c.stream_buffer); }},
      {"source_retry_initial_ms", "11", "31",
       [&](const auto& c) { return text(c.source_retry_initial_ms); }},
      {"source_retry_max_seconds", "12", "32",
       [&](const auto& c) { return text(c.source_retry_max_seconds); }},
      {"source_error_retry_seconds", "13", "33",
       [&](const auto& c) { return text(c.source_error_retry_seconds); }},
      {"source_http_timeout_seconds", "14", "34",
       [&](const auto& c) { return text(c.source_http_timeout_seconds); }},
      {"auth", "tokens", "", [](const auto& c) { return c.auth; }},
      {"tls_cert", pem, "", [](const auto& c) { return c.tls_cert; }},
      {"tls_key", pem, "", [](const auto& c) { return c.tls_key; }},
      {"tls_client_ca", pem, "", [](const auto& c) { return c.tls_client_ca; }},
      {"allow_plaintext", "true", "",
       [](const auto& c) { return std::string(c.allow_plaintext ? "true" : "false"); }},
      {"metrics_listen", "127.0.0.1:9000", "127.0.0.1:9001",
       [](const auto& c) { return c.metrics_listen; }},
      {"test_clock_file", clock1, clock2, [](const auto& c) { return c.test_clock_file; }},
  };
  std::string yaml;
  std::vector<std::string> flags;
  for (const Case& c : cases) {
    absl::StrAppend(&yaml, c.key, ": ", c.in_file, "\n");
    if (c.in_flag.empty()) continue;
    std::string flag = absl::StrCat("--", c.key);
    std::replace(flag.begin(), flag.end(), '_', '-');
    flags.push_back(flag);
    flags.push_back(c.in_flag);
  }
  const std::string file = WriteFile("all.yaml", yaml);
  absl::StatusOr<ServerConfig> from_file = Parse({"--config", file.c_str()});
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  std::vector<const char*> args = {"--config", file.c_str()};
  for (const std::string& f : flags) args.push_back(f.c_str());
  absl::StatusOr<ServerConfig> from_flags = Parse(args);
  ASSERT_TRUE(from_flags.ok()) << from_flags.status();
  for (const Case& c : cases) {
    EXPECT_EQ(c.read(*from_file), c.in_file) << c.key;
    EXPECT_EQ(c.read(*from_flags), c.in_flag.empty() ? c.in_file : c.in_flag) << c.key;
  }

  // A flag's range check; an unknown key lists every known one.
  EXPECT_FALSE(Parse({"--workers", "-1"}).ok());
  EXPECT_FALSE(Parse({"--grpc-memory-quota-mib", "0"}).ok());
  absl::StatusOr<ServerConfig> defaults = Parse({});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->grpc_memory_quota_mib, 256);
  const std::string unknown = WriteFile("u.yaml", "nope: 1\n");
  absl::StatusOr<ServerConfig> c = Parse({"--config", unknown.c_str()});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("known: listen, data_dir, rules_dir, log_level"));
  EXPECT_THAT(c.status().message(), HasSubstr("allow_plaintext, metrics_listen, test_clock_file)"));
}

TEST_F(ConfigTest, UnknownKeyNamesFileAndLine) {
  std::string path = WriteFile("bad.yaml", "listen: 127.0.0.1:1\ndata_dri: /x\n");
  absl::StatusOr<ServerConfig> c = Parse({"--config", path.c_str()});
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(c.status()));
  EXPECT_THAT(c.status().message(), HasSubstr(path + ":2:"));
  EXPECT_THAT(c.status().message(), HasSubstr("unknown option \"data_dri\""));
}

TEST_F(ConfigTest, WrongTypeNamesKeyAndLine) {
  std::string path = WriteFile("bad.yaml", "executor_threads: many\n");
  absl::StatusOr<ServerConfig> c = Parse({"--config", path.c_str()});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr(":1:"));
  EXPECT_THAT(c.status().message(), HasSubstr("\"executor_threads\" must be a integer"));
}

TEST_F(ConfigTest, MalformedYamlNamesLine) {
  std::string path = WriteFile("bad.yaml", "listen: [1,\n");
  absl::StatusOr<ServerConfig> c = Parse({"--config", path.c_str()});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr(path + ":"));
}

TEST_F(ConfigTest, BadLogLevelFlag) {
  absl::StatusOr<ServerConfig> c = Parse({"--log-level", "loud"});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("debug, info, warn, error"));
}

TEST_F(ConfigTest, ListenAddressIsValidated) {
  EXPECT_TRUE(ValidateListenAddress("127.0.0.1:0").ok());
  EXPECT_TRUE(ValidateListenAddress("[::1]:65535").ok());
  EXPECT_TRUE(ValidateListenAddress("unix:/tmp/p.sock").ok());
  EXPECT_FALSE(ValidateListenAddress("127.0.0.1:99999").ok());
  EXPECT_FALSE(ValidateListenAddress("127.0.0.1").ok());
  EXPECT_FALSE(ValidateListenAddress(":80").ok());
  EXPECT_FALSE(ValidateListenAddress("127.0.0.1:8o").ok());
  absl::StatusOr<ServerConfig> c = Parse({"--listen", "127.0.0.1:99999"});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("\"127.0.0.1:99999\" is not host:port"));
}

TEST_F(ConfigTest, SecurityOptionsAreCheckedTogether) {
  EXPECT_TRUE(IsLocalListenAddress("127.0.0.1:1"));
  EXPECT_TRUE(IsLocalListenAddress("[::1]:1"));
  EXPECT_TRUE(IsLocalListenAddress("localhost:1"));
  EXPECT_TRUE(IsLocalListenAddress("unix:/run/p.sock"));
  EXPECT_FALSE(IsLocalListenAddress("0.0.0.0:1"));
  EXPECT_FALSE(IsLocalListenAddress("10.0.0.1:1"));

  absl::StatusOr<ServerConfig> c = Parse({});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->auth, "tokens");  // Never off by default.
  c = Parse({"--listen", "0.0.0.0:1"});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("--allow-plaintext"));
  c = Parse({"--listen", "0.0.0.0:1", "--allow-plaintext"});
  EXPECT_TRUE(c.ok()) << c.status();
  c = Parse({"--listen", "0.0.0.0:1", "--allow-plaintext", "--auth", "none"});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("--auth=none"));
  c = Parse({"--auth", "none"});
  EXPECT_TRUE(c.ok()) << c.status();
  c = Parse({"--auth", "maybe"});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("--auth"));

  ServerConfig tls;
  tls.tls_cert = "cert.pem";
  EXPECT_THAT(ValidateSecurity(tls).message(), HasSubstr("--tls-key"));
  tls.tls_key = "key.pem";
  tls.listen = "0.0.0.0:1";
  EXPECT_TRUE(ValidateSecurity(tls).ok());  // TLS may listen anywhere.
  ServerConfig client_ca;
  client_ca.tls_client_ca = "ca.pem";
  EXPECT_FALSE(ValidateSecurity(client_ca).ok());
}

TEST_F(ConfigTest, WindowClockIsEventOrProcessing) {
  absl::StatusOr<ServerConfig> c = Parse({"--window-clock", "processing"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->window_clock, "processing");
  EXPECT_EQ(Parse({})->window_clock, "event");
  absl::StatusOr<ServerConfig> bad = Parse({"--window-clock", "wall"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("--window-clock"));
  EXPECT_THAT(bad.status().message(), HasSubstr("event, processing"));
}

TEST_F(ConfigTest, StreamBufferFromFlagOrFileMustBePositive) {
  EXPECT_EQ(Parse({})->stream_buffer, 1024);
  absl::StatusOr<ServerConfig> c = Parse({"--stream-buffer", "16"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->stream_buffer, 16);
  EXPECT_FALSE(Parse({"--stream-buffer", "0"}).ok());
  std::string path = WriteFile("buffer.yaml", "stream_buffer: 0\n");
  absl::StatusOr<ServerConfig> bad = Parse({"--config", path.c_str()});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("stream_buffer"));
}

TEST_F(ConfigTest, MetricsListenIsOffByDefaultAndValidated) {
  EXPECT_EQ(Parse({})->metrics_listen, "");
  absl::StatusOr<ServerConfig> c = Parse({"--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:0");
  std::string path = WriteFile("metrics.yaml", "metrics_listen: \"[::1]:9464\"\n");
  c = Parse({"--config", path.c_str()});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->metrics_listen, "[::1]:9464");
  for (const char* bad : {"9464", "127.0.0.1:70000", "unix:/run/m.sock", "host:"}) {
    absl::StatusOr<ServerConfig> refused = Parse({"--metrics-listen", bad});
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << bad;
    EXPECT_THAT(refused.status().message(), HasSubstr("metrics_listen")) << bad;
  }
}

TEST_F(ConfigTest, UnknownFlagIsUsageError) {
  absl::StatusOr<ServerConfig> c = Parse({"--lisen", "x"});
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(c.status()));
}

TEST_F(ConfigTest, HelpIsCancelledAndPrintsFlags) {
  absl::StatusOr<ServerConfig> c = Parse({"--help"});
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::IsCancelled(c.status()));
  EXPECT_THAT(out_.str(), HasSubstr("--data-dir"));
  EXPECT_THAT(out_.str(), HasSubstr("--listen"));
}

}  // namespace
}  // namespace pantherd::server
