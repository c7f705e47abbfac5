#include "governance/audit_log.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace a2amesh::governance {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

AuditEntry Decision(int i, const std::string& principal) {
  AuditEntry entry;
  entry.time = absl::FromUnixMillis(1700000000000 + i);
  entry.kind = "decision";
  entry.principal = principal;
  entry.action = "send";
  entry.resource = "agent:echo skill:echo node:n1";
  entry.decision = i % 2 == 0 ? "allow" : "deny";
  entry.rule = "r\"quoted\"\n";
  entry.task_id = absl::StrCat("t", i);
  return entry;
}

TEST(AuditLogTest, OneParseableJsonLinePerEntry) {
  testing::TempDir dir;
  auto log = AuditLog::Open({dir.File("audit.log")});
  ASSERT_TRUE(log.ok()) << log.status();
  for (int i = 0; i < 10; ++i) (*log)->Record(Decision(i, "alice"));
  (*log)->Flush();
  std::vector<std::string> lines = Lines(dir.File("audit.log"));
  ASSERT_EQ(lines.size(), 10u);
  for (const std::string& line : lines) {
    google::protobuf::Struct parsed;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &parsed).ok()) << line;
    EXPECT_EQ(parsed.fields().at("principal").string_value(), "alice");
    EXPECT_EQ(parsed.fields().at("rule").string_value(), "r\"quoted\"\n");
    EXPECT_FALSE(parsed.fields().contains("agent"));  // empty fields are left out
  }
  EXPECT_THAT(lines[0], HasSubstr("\"time\":\"2023-11-14T22:13:20.000000Z\""));
}

TEST(AuditLogTest, RotatesAtItsSizeKeepingMaxFiles) {
  testing::TempDir dir;
  AuditLogOptions options;
  options.path = dir.File("audit.log");
  options.max_bytes = 1000;
  options.max_files = 2;
  auto log = AuditLog::Open(options);
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 40; ++i) (*log)->Record(Decision(i, "alice"));
  (*log)->Flush();
  size_t total = 0;
  for (const char* suffix : {"", ".1", ".2"}) {
    std::vector<std::string> lines = Lines(options.path + suffix);
    EXPECT_FALSE(lines.empty()) << suffix;
    total += lines.size();
    std::ifstream in(options.path + suffix, std::ios::ate);
    EXPECT_LE(static_cast<int64_t>(in.tellg()), options.max_bytes) << suffix;
  }
  EXPECT_LT(total, 40u);  // the oldest file was removed
  EXPECT_FALSE(std::ifstream(options.path + ".3").good());
  // The newest entry is in the live file.
  EXPECT_THAT(Lines(options.path).back(), HasSubstr("\"task_id\":\"t39\""));
}

TEST(AuditLogTest, TailFiltersAndFollowsBySequence) {
  auto log = AuditLog::Open({});  // in memory only
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 6; ++i) (*log)->Record(Decision(i, i < 3 ? "alice" : "bob"));
  auto bobs = (*log)->Tail(100, 0, [](const AuditEntry& e) { return e.principal == "bob"; });
  ASSERT_EQ(bobs.size(), 3u);
  EXPECT_THAT(bobs[0].json, HasSubstr("\"task_id\":\"t3\""));
  auto last_two = (*log)->Tail(2, 0, nullptr);
  ASSERT_EQ(last_two.size(), 2u);
  EXPECT_EQ(last_two[1].sequence, 6u);
  (*log)->Record(Decision(6, "carol"));
  auto newer = (*log)->Tail(100, last_two[1].sequence, nullptr);
  ASSERT_EQ(newer.size(), 1u);
  EXPECT_THAT(newer[0].json, HasSubstr("carol"));
}

TEST(AuditLogTest, AFullQueueDropsAndCountsInsteadOfBlocking) {
  testing::TempDir dir;
  AuditLogOptions options;
  options.path = dir.File("audit.log");
  options.max_queued = 4;
  int dropped = 0;
  options.on_drop = [&dropped] { ++dropped; };
  auto log = AuditLog::Open(options);
  ASSERT_TRUE(log.ok());
  // Far more than the queue holds, as fast as possible: Record never waits.
  for (int i = 0; i < 20000; ++i) (*log)->Record(Decision(i, "alice"));
  (*log)->Flush();
  EXPECT_EQ((*log)->dropped(), dropped);
  EXPECT_EQ((*log)->written() + (*log)->dropped(), 20000);
  EXPECT_EQ(static_cast<int64_t>(Lines(options.path).size()), (*log)->written());
}

// A pipe nobody reads blocks the writer for good: the log still stops (it
// leaves the writer behind) instead of keeping its node from exiting.
TEST(AuditLogTest, AWriterStuckInAWriteDoesNotKeepTheLogFromStopping) {
  signal(SIGPIPE, SIG_IGN);  // as meshd does
  testing::TempDir dir;
  const std::string fifo = dir.File("audit.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  {
    auto log = AuditLog::Open({fifo});
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = 0; i < 2000; ++i) (*log)->Record(Decision(i, "alice"));  // > 64 KiB
  }               // returns after AuditLog::kStopWait at most
  close(reader);  // the stuck write fails; the writer ends on its own
}

// Whether a thread of this process is inside write(2) on `path`: read from
// /proc/self/task/*/syscall ("NR fd ..." while a thread is in syscall NR).
bool AThreadIsWritingTo(const std::string& path) {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "syscall");
    long number = -1;
    std::string fd;
    if (!(in >> number >> fd) || number != SYS_write) continue;
    std::error_code error;
    const auto target = std::filesystem::read_symlink(
        absl::StrCat("/proc/self/fd/", std::stoul(fd, nullptr, 16)), error);
    if (!error && target == path) return true;
  }
  return false;
}

// Tail shows every recorded entry, also those the writer has taken from the
// queue and is still writing (here: stuck on a full pipe until it is read).
TEST(AuditLogTest, TailShowsTheEntriesTheWriterIsWriting) {
  signal(SIGPIPE, SIG_IGN);
  testing::TempDir dir;
  const std::string fifo = dir.File("audit.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  auto log = AuditLog::Open({fifo});
  ASSERT_TRUE(log.ok()) << log.status();
  constexpr int kEntries = 2000;  // ~400 KB: far more than a pipe holds
  for (int i = 0; i < kEntries; ++i) (*log)->Record(Decision(i, "alice"));
  ASSERT_TRUE(testing::WaitFor([&] { return AThreadIsWritingTo(fifo); }));
  std::vector<AuditLog::Line> lines = (*log)->Tail(kEntries, 0, nullptr);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kEntries));
  for (int i = 0; i < kEntries; ++i) {
    EXPECT_EQ(lines[i].sequence, static_cast<uint64_t>(i + 1));
  }
  close(reader);  // the stuck write fails; the log stops at once
}

TEST(AuditLogTest, AnUnwritableFileIsRefusedNamingIt) {
  auto log = AuditLog::Open({"/nonexistent-dir/audit.log"});
  ASSERT_FALSE(log.ok());
  EXPECT_THAT(log.status().message(), HasSubstr("/nonexistent-dir/audit.log"));
}

}  // namespace
}  // namespace a2amesh::governance
