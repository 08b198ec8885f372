#include "tests/fake_receiver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace pantherd::testing {
namespace {

constexpr size_t kMaxHeadBytes = 64 << 10;
constexpr absl::Duration kReadTimeout = absl::Seconds(10);

bool SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

void SendAnswer(int fd, int status, const FakeReceiver::Headers& headers, absl::string_view body) {
  std::string out = absl::StrCat("HTTP/1.1 ", status, " ", Reason(status), "\r\n");
  for (const auto& [k, v] : headers) absl::StrAppend(&out, k, ": ", v, "\r\n");
  absl::StrAppend(&out, "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
  SendAll(fd, out);
}

// Reads into `*data` until it holds `want` bytes, the peer closes, or the
// deadline passes; false unless `want` bytes arrived.
bool ReadUntil(int fd, std::string* data, size_t want, absl::Time deadline,
               const std::atomic<bool>& stop) {
  char buf[16384];
  while (data->size() < want) {
    if (absl::Now() > deadline || stop.load()) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data->append(buf, static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

std::string FakeReceiver::Request::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

bool FakeReceiver::Request::HasHeader(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<FakeReceiver>> FakeReceiver::Start(Options options) {
  std::unique_ptr<FakeReceiver> r(new FakeReceiver(std::move(options)));
  r->listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (r->listen_fd_ < 0) return absl::InternalError(strerror(errno));
  const int one = 1;
  setsockopt(r->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(r->options_.port));
  socklen_t len = sizeof(addr);
  if (bind(r->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(r->listen_fd_, 128) != 0 ||
      getsockname(r->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string error = strerror(errno);
    close(r->listen_fd_);
    r->listen_fd_ = -1;
    return absl::UnavailableError(absl::StrCat("fake receiver cannot listen: ", error));
  }
  r->port_ = ntohs(addr.sin_port);
  r->thread_ = std::thread([p = r.get()] { p->Serve(); });
  return r;
}

FakeReceiver::~FakeReceiver() { Stop(); }

void FakeReceiver::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  stop_flag_.store(true);
  if (thread_.joinable()) thread_.join();
  // Only this thread touches connections_ now that the accept loop ended.
  for (Connection& c : connections_) {
    if (c.thread.joinable()) c.thread.join();
  }
  connections_.clear();
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    listen_fd_ = -1;
  }
}

std::string FakeReceiver::base_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

std::string FakeReceiver::url(absl::string_view path) const {
  return absl::StrCat(base_url(), path);
}

void FakeReceiver::SetDefaultAnswer(Answer answer) {
  absl::MutexLock lock(&mu_);
  default_answer_ = std::move(answer);
}

void FakeReceiver::SetAnswer(std::string path, Answer answer) {
  absl::MutexLock lock(&mu_);
  answers_[std::move(path)] = std::move(answer);
}

void FakeReceiver::Inject(std::vector<Fault> faults) {
  absl::MutexLock lock(&mu_);
  for (Fault& f : faults) faults_.push_back(std::move(f));
}

int FakeReceiver::faults_pending() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(faults_.size());
}

void FakeReceiver::SetDown(bool down) {
  absl::MutexLock lock(&mu_);
  down_ = down;
}

std::vector<FakeReceiver::Request> FakeReceiver::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

int FakeReceiver::request_count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(requests_.size());
}

bool FakeReceiver::WaitForRequests(int n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return static_cast<int>(requests_.size()) >= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

void FakeReceiver::ClearRequests() {
  absl::MutexLock lock(&mu_);
  requests_.clear();
  attempts_.clear();
}

bool FakeReceiver::Sleep(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  return !mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
}

void FakeReceiver::Serve() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    // Join the connections that finished.
    for (size_t i = 0; i < connections_.size();) {
      if (connections_[i].done->load()) {
        connections_[i].thread.join();
        connections_.erase(connections_.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    bool down;
    {
      absl::MutexLock lock(&mu_);
      down = down_;
    }
    if (down) {
      close(fd);
      continue;
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    connections_.push_back({std::thread([this, fd, done] {
                              HandleConnection(fd);
                              close(fd);
                              done->store(true);
                            }),
                            done});
  }
}

void FakeReceiver::HandleConnection(int fd) {
  const absl::Time deadline = absl::Now() + kReadTimeout;
  std::string data;
  size_t head_end = std::string::npos;
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
    if (data.size() > kMaxHeadBytes) {
      SendAnswer(fd, 431, {}, "request head too large");
      return;
    }
    if (!ReadUntil(fd, &data, data.size() + 1, deadline, stop_flag_)) return;
  }
  Request request;
  std::vector<absl::string_view> lines =
      absl::StrSplit(absl::string_view(data).substr(0, head_end), "\r\n");
  std::vector<std::string> request_line = absl::StrSplit(lines[0], ' ');
  if (request_line.size() != 3) {
    SendAnswer(fd, 400, {}, "bad request line");
    return;
  }
  request.method = request_line[0];
  request.path = request_line[1];
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) continue;
    request.headers.emplace_back(
        std::string(lines[i].substr(0, colon)),
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1))));
  }
  if (request.HasHeader("Transfer-Encoding")) {
    SendAnswer(fd, 501, {}, "chunked bodies are not supported; send Content-Length");
    return;
  }
  size_t length = 0;
  if (request.HasHeader("Content-Length") &&
      !absl::SimpleAtoi(request.Header("Content-Length"), &length)) {
    SendAnswer(fd, 400, {}, "bad Content-Length");
    return;
  }
  const bool too_large = length > options_.max_body_bytes;
  if (!too_large) {
    if (!ReadUntil(fd, &data, head_end + 4 + length, deadline, stop_flag_)) return;
    request.body = data.substr(head_end + 4, length);
  }
  request.time = absl::Now();

  std::optional<Fault> fault;
  Answer answer;
  {
    absl::MutexLock lock(&mu_);
    const std::string key = request.HasHeader("Idempotency-Key")
                                ? absl::StrCat("key:", request.Header("Idempotency-Key"))
                                : absl::StrCat("path:", request.path);
    request.attempt = ++attempts_[key];
    const std::string path = request.path.substr(0, request.path.find('?'));
    const auto it = answers_.find(path);
    answer = it != answers_.end() ? it->second : default_answer_;
    if (too_large) {
      answer = Answer{413, "request body too large", {}};
    } else if (!faults_.empty()) {
      fault = std::move(faults_.front());
      faults_.erase(faults_.begin());
    }
    if (fault && fault->status != 0) answer = Answer{fault->status, fault->body, fault->headers};
    request.status = fault && fault->drop ? 0 : answer.status;
    requests_.push_back(request);
  }
  if (fault && fault->delay > absl::ZeroDuration() && !Sleep(fault->delay)) return;
  if (fault && fault->drop) {
    // Unanswered: a reset rather than an orderly end of the stream.
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    return;
  }
  SendAnswer(fd, answer.status, answer.headers, answer.body);
  shutdown(fd, SHUT_WR);
  // Let the client read the answer before the close (413 leaves a body unread).
  char buf[4096];
  const absl::Time drain_until = absl::Now() + absl::Milliseconds(200);
  while (absl::Now() < drain_until) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    if (recv(fd, buf, sizeof(buf), 0) <= 0) break;
  }
}

}  // namespace pantherd::testing
