#ifndef A2AMESH_TESTS_TESTING_SUBPROCESS_H_
#define A2AMESH_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace a2amesh::testing {

// A child process for end-to-end tests: started with execv, its stdout and
// stderr appended to `log_path`, killed (SIGKILL) and reaped on destruction if
// still running. Not thread-safe.
class Subprocess {
 public:
  static absl::StatusOr<Subprocess> Start(const std::vector<std::string>& argv,
                                          const std::string& log_path);
  // The same, with stdout and stderr appended to files of their own.
  static absl::StatusOr<Subprocess> Start(const std::vector<std::string>& argv,
                                          const std::string& out_path, const std::string& err_path);
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  ~Subprocess();

  pid_t pid() const { return pid_; }
  void Signal(int signal_number);
  // Waits for the process to exit; its exit code, 128+signal if killed, or
  // DEADLINE_EXCEEDED.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  bool running();

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

// A binary built by this project: <build>/bin/name, or $A2AMESH_BIN_DIR/name.
std::string BinaryPath(const std::string& name);
// A file of the source tree.
std::string SourcePath(const std::string& relative);

// A TCP port on 127.0.0.1 that was free a moment ago.
int PickFreePort();

// A string field of meshd's --ready-file ("" if absent).
std::string ReadyFileField(const std::string& path, const std::string& key);

// Waits for meshd's --ready-file and returns its grpc_address.
absl::StatusOr<std::string> WaitForReadyFile(const std::string& path, absl::Duration timeout);

// The whole content of a file ("" if missing).
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_SUBPROCESS_H_
