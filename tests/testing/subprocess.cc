#include "testing/subprocess.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace a2amesh::testing {

absl::StatusOr<Subprocess> Subprocess::Start(const std::vector<std::string>& argv,
                                             const std::string& log_path) {
  return Start(argv, log_path, log_path);
}

absl::StatusOr<Subprocess> Subprocess::Start(const std::vector<std::string>& argv,
                                             const std::string& out_path,
                                             const std::string& err_path) {
  int log = open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) {
    return absl::UnavailableError(absl::StrCat("cannot open ", out_path));
  }
  int err_log = err_path == out_path
                    ? fcntl(log, F_DUPFD_CLOEXEC, 0)
                    : open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (err_log < 0) {
    close(log);
    return absl::UnavailableError(absl::StrCat("cannot open ", err_path));
  }
  std::vector<char*> args;
  for (const std::string& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    close(log);
    close(err_log);
    return absl::UnavailableError("fork failed");
  }
  if (pid == 0) {
    dup2(log, STDOUT_FILENO);
    dup2(err_log, STDERR_FILENO);
    // Tests may block signals in their threads; the child starts clean.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(log);
  close(err_log);
  return Subprocess(pid);
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(other.pid_), exit_code_(other.exit_code_) {
  other.pid_ = -1;
}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    this->~Subprocess();
    pid_ = other.pid_;
    exit_code_ = other.exit_code_;
    other.pid_ = -1;
  }
  return *this;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && exit_code_ < 0) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
}

void Subprocess::Signal(int signal_number) {
  if (pid_ > 0 && exit_code_ < 0) {
    kill(pid_, signal_number);
  }
}

bool Subprocess::running() {
  if (pid_ <= 0 || exit_code_ >= 0) {
    return false;
  }
  return !Wait(absl::ZeroDuration()).ok();
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  if (exit_code_ >= 0) {
    return exit_code_;
  }
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status;
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("pid ", pid_, " still running"));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

std::string BinaryPath(const std::string& name) {
  const char* dir = std::getenv("A2AMESH_BIN_DIR");
  return absl::StrCat(dir != nullptr ? dir : A2AMESH_TEST_BIN_DIR, "/", name);
}

std::string SourcePath(const std::string& relative) {
  return absl::StrCat(A2AMESH_TEST_SOURCE_DIR, "/", relative);
}

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

std::string ReadyFileField(const std::string& path, const std::string& key) {
  const std::string content = ReadFileOrEmpty(path);
  const std::string quoted = absl::StrCat("\"", key, "\":\"");
  size_t at = content.find(quoted);
  if (at == std::string::npos) {
    return "";
  }
  size_t start = at + quoted.size();
  return content.substr(start, content.find('"', start) - start);
}

absl::StatusOr<std::string> WaitForReadyFile(const std::string& path, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (std::string address = ReadyFileField(path, "grpc_address"); !address.empty()) {
      return address;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return absl::DeadlineExceededError(absl::StrCat("no ready file at ", path));
}

}  // namespace a2amesh::testing
