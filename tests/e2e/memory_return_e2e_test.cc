// After a burst of large inputs the node refuses, a real meshd's RSS comes back
// down: retention's housekeeping gives the allocator's free memory back
// (malloc_trim). Measured from /proc, as an operator would.
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/http_client.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

#if defined(__SANITIZE_ADDRESS__)
#define A2AMESH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define A2AMESH_ASAN 1
#endif
#endif

namespace a2amesh {
namespace {

using ::a2amesh::testing::BinaryPath;
using ::a2amesh::testing::Subprocess;

// Resident set size of `pid`, in bytes (0 if unreadable).
int64_t RssBytes(pid_t pid) {
  std::ifstream statm(absl::StrCat("/proc/", pid, "/statm"));
  int64_t size = 0;
  int64_t resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

TEST(MemoryReturnE2eTest, RssComesBackAfterABurstOfRefusedLargeInputs) {
#ifdef A2AMESH_ASAN
  GTEST_SKIP() << "built with AddressSanitizer, whose allocator holds freed memory in "
                  "quarantine: this test measures glibc malloc's return of memory";
#endif
  testing::TempDir dir;
  const std::string ready = dir.File("ready.json");
  absl::StatusOr<Subprocess> meshd =
      Subprocess::Start({BinaryPath("meshd"), "--node-id", "mem", "--ephemeral", "--grpc-address",
                         "127.0.0.1:0", "--http-address", "127.0.0.1:0", "--metrics-address", "",
                         "--ready-file", ready, "--housekeeping-interval", "200ms"},
                        dir.File("meshd.log"));
  ASSERT_TRUE(meshd.ok()) << meshd.status();
  ASSERT_TRUE(testing::WaitForReadyFile(ready, absl::Seconds(20)).ok())
      << testing::ReadFileOrEmpty(dir.File("meshd.log"));
  const std::string http = testing::ReadyFileField(ready, "http_address");
  auto send = [&](size_t text_bytes) {
    const std::string body = absl::StrCat(
        R"({"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m",)",
        R"("role":"ROLE_USER","parts":[{"text":")", std::string(text_bytes, 'x'), R"("}]}}})");
    absl::StatusOr<std::string> raw = testing::HttpExchange(
        http, absl::StrCat("POST /a2a/jsonrpc HTTP/1.1\r\nHost: x\r\nA2A-Version: 1.0\r\n"
                           "Content-Type: application/json\r\nContent-Length: ",
                           body.size(), "\r\nConnection: close\r\n\r\n", body));
    return raw.value_or("");
  };
  // Settled: a few ordinary requests, then the housekeeping's trims.
  for (int i = 0; i < 5; ++i) send(100);
  int64_t before = 0;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const int64_t now = RssBytes(meshd->pid());
        const bool steady = before > 0 && now <= before;
        before = now;
        return steady;
      },
      absl::Seconds(10)));

  // 30 bodies of 5 MB: each parsed, then refused (--max-message-bytes, 4 MiB).
  int64_t peak = 0;
  for (int i = 0; i < 30; ++i) {
    EXPECT_THAT(send(5 << 20), ::testing::HasSubstr("--max-message-bytes"));
    peak = std::max(peak, RssBytes(meshd->pid()));
  }
  RecordProperty("rss_before_mb", std::to_string(before >> 20));
  RecordProperty("rss_peak_mb", std::to_string(peak >> 20));
  // Back within 20 % of where it was.
  int64_t after = 0;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        after = RssBytes(meshd->pid());
        return after <= before * 12 / 10;
      },
      absl::Seconds(20)))
      << "before " << (before >> 20) << " MB, peak " << (peak >> 20) << " MB, now " << (after >> 20)
      << " MB";
  RecordProperty("rss_after_mb", std::to_string(after >> 20));
  // The node still serves.
  EXPECT_THAT(send(100), ::testing::HasSubstr("\"jsonrpc\""));
}

}  // namespace
}  // namespace a2amesh
