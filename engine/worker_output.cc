#include "engine/worker_output.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace pantherd::engine {

WorkerOutput::WorkerOutput(WorkerOutputSink sink, WorkerOutputOptions options)
    : sink_(std::move(sink)), options_(std::move(options)) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
    wake_read_ = fds[0];
    wake_write_ = fds[1];
  }
  thread_ = std::thread([this] { Loop(); });
}

WorkerOutput::~WorkerOutput() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (wake_write_ >= 0) {
    ssize_t ignored = write(wake_write_, "x", 1);
    (void)ignored;
  }
  thread_.join();
  if (wake_read_ >= 0) close(wake_read_);
  if (wake_write_ >= 0) close(wake_write_);
}

void WorkerOutput::Add(pid_t pid, int fd) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  Source s;
  s.pid = pid;
  s.tokens = options_.burst_lines;
  s.refilled = options_.now();
  {
    absl::MutexLock lock(&mu_);
    pending_[fd] = std::move(s);
  }
  if (wake_write_ >= 0) {
    ssize_t ignored = write(wake_write_, "x", 1);
    (void)ignored;
  }
}

std::string WorkerOutput::Format(const std::string& line, size_t max_line_bytes) {
  std::string out;
  const size_t n = std::min(line.size(), max_line_bytes);
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += static_cast<char>(c);
    }
  }
  if (line.size() > n) absl::StrAppend(&out, " [", line.size() - n, " more bytes cut]");
  return out;
}

void WorkerOutput::ReportDropped(Source& s) {
  if (s.dropped == 0) return;
  if (sink_.dropped) sink_.dropped(s.pid, s.dropped);
  s.dropped = 0;
}

void WorkerOutput::Emit(Source& s, const std::string& line) {
  const absl::Time now = options_.now();
  const double seconds = absl::ToDoubleSeconds(now - s.refilled);
  if (seconds > 0) {
    s.tokens = std::min(options_.burst_lines, s.tokens + seconds * options_.lines_per_second);
    s.refilled = now;
  }
  if (s.tokens < 1) {
    ++s.dropped;
    dropped_.fetch_add(1);
    return;
  }
  s.tokens -= 1;
  ReportDropped(s);
  lines_.fetch_add(1);
  if (sink_.line) sink_.line(s.pid, Format(line, options_.max_line_bytes));
}

void WorkerOutput::Loop() {
  std::map<int, Source> sources;
  std::vector<char> buffer(16384);
  for (;;) {
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [fd, s] : pending_) sources[fd] = std::move(s);
      pending_.clear();
      stopping = stopping_;
    }
    std::vector<pollfd> fds;
    fds.push_back({wake_read_, POLLIN, 0});
    for (const auto& [fd, s] : sources) fds.push_back({fd, POLLIN, 0});
    // When stopping, drain what is readable now and end.
    const int n = poll(fds.data(), fds.size(), stopping ? 0 : -1);
    if (n < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) {
      char sink[64];
      while (read(wake_read_, sink, sizeof(sink)) > 0) {
      }
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const int fd = fds[i].fd;
      Source& s = sources[fd];
      bool ended = false;
      for (;;) {
        const ssize_t got = read(fd, buffer.data(), buffer.size());
        if (got > 0) {
          s.partial.append(buffer.data(), static_cast<size_t>(got));
          size_t start = 0;
          for (size_t nl; (nl = s.partial.find('\n', start)) != std::string::npos; start = nl + 1) {
            Emit(s, s.partial.substr(start, nl - start));
          }
          s.partial.erase(0, start);
          // An endless line is cut: keep only what Format would show.
          if (s.partial.size() > options_.max_line_bytes * 4) {
            Emit(s, s.partial);
            s.partial.clear();
          }
          continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (got < 0 && errno == EINTR) continue;
        ended = true;  // end of file or error
        break;
      }
      if (ended) {
        if (!s.partial.empty()) Emit(s, s.partial);
        ReportDropped(s);
        close(fd);
        sources.erase(fd);
      }
    }
    if (stopping) break;
  }
  for (auto& [fd, s] : sources) {
    if (!s.partial.empty()) Emit(s, s.partial);
    ReportDropped(s);
    close(fd);
  }
}

}  // namespace pantherd::engine
