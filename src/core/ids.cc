#include "core/ids.h"

#include <cstdint>
#include <optional>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace a2amesh {
namespace {

bool IsIdChar(char c, bool allow_upper) {
  return absl::ascii_isdigit(c) || absl::ascii_islower(c) || c == '.' || c == '_' || c == '-' ||
         (allow_upper && absl::ascii_isupper(c));
}

absl::Status ValidateId(absl::string_view what, absl::string_view id, size_t max_len,
                        bool allow_upper) {
  if (id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  }
  if (id.size() > max_len) {
    // Not all of it: an error message travels back in gRPC metadata, which
    // has a size limit of its own.
    return absl::InvalidArgumentError(absl::StrCat(what, " '", id.substr(0, max_len), "...' (",
                                                   id.size(), " characters) is longer than ",
                                                   max_len, " characters"));
  }
  if (!absl::ascii_isalnum(id[0])) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", id, "' must start with a letter or digit"));
  }
  for (char c : id) {
    if (!IsIdChar(c, allow_upper)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " '", id, "' contains '", std::string(1, c),
                       "'; allowed: ", allow_upper ? "[A-Za-z0-9._-]" : "[a-z0-9._-]"));
    }
  }
  return absl::OkStatus();
}

// Appends the canonical text form (8-4-4-4-12 lowercase hex digits) of the
// UUID whose 128 bits are hi:lo.
void AppendUuid(uint64_t hi, uint64_t lo, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  char text[36];
  int pos = 0;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) {
      text[pos++] = '-';
    }
    const uint64_t word = i < 16 ? hi : lo;
    text[pos++] = kHex[(word >> (60 - 4 * (i % 16))) & 0xf];
  }
  out->append(text, sizeof(text));
}

// The 128 bits of a version 4 (random) or version 7 (time-ordered: 48 bits of
// Unix milliseconds first) UUID, with the RFC 9562 variant.
std::pair<uint64_t, uint64_t> UuidBits(std::optional<absl::Time> time) {
  thread_local absl::BitGen gen;
  uint64_t hi = absl::Uniform<uint64_t>(gen);
  uint64_t lo = absl::Uniform<uint64_t>(gen);
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  if (time.has_value()) {
    const uint64_t unix_ms = static_cast<uint64_t>(absl::ToUnixMillis(*time)) & 0xffffffffffffULL;
    hi = (unix_ms << 16) | 0x7000 | (hi & 0x0fff);
  } else {
    hi = (hi & 0xffffffffffff0fffULL) | 0x4000;
  }
  return {hi, lo};
}

}  // namespace

std::string NewUuid() {
  auto [hi, lo] = UuidBits(std::nullopt);
  std::string text;
  AppendUuid(hi, lo, &text);
  return text;
}

std::string NewTimeOrderedUuid(absl::Time now) {
  auto [hi, lo] = UuidBits(now);
  std::string text;
  AppendUuid(hi, lo, &text);
  return text;
}

std::string MakeTaskId(absl::string_view node_id, absl::Time now) {
  auto [hi, lo] = UuidBits(now);
  std::string id;
  id.reserve(node_id.size() + 37);
  id.append(node_id.data(), node_id.size());
  id.push_back(kTaskIdSeparator);
  AppendUuid(hi, lo, &id);
  return id;
}

absl::string_view TaskIdOwner(absl::string_view task_id) {
  size_t pos = task_id.find(kTaskIdSeparator);
  if (pos == absl::string_view::npos || pos == 0) {
    return "";
  }
  return task_id.substr(0, pos);
}

absl::Status ValidateNodeId(absl::string_view node_id) {
  return ValidateId("node id", node_id, 63, /*allow_upper=*/true);
}

absl::Status ValidateAgentId(absl::string_view agent_id) {
  return ValidateId("agent id", agent_id, 64, /*allow_upper=*/false);
}

std::string AgentIdFromName(absl::string_view name) {
  std::string id;
  for (char c : name) {
    if (id.size() == 64) {
      break;
    }
    char lower = absl::ascii_tolower(c);
    if (IsIdChar(lower, /*allow_upper=*/false)) {
      id.push_back(lower);
    } else if (!id.empty() && id.back() != '-') {
      id.push_back('-');
    }
  }
  while (!id.empty() && (id.back() == '-' || id.back() == '.' || id.back() == '_')) {
    id.pop_back();
  }
  size_t start = 0;
  while (start < id.size() && !absl::ascii_isalnum(id[start])) {
    ++start;
  }
  return id.substr(start);
}

}  // namespace a2amesh
