#include "core/ids.h"

#include <cstdint>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

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
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", id, "' is longer than ", max_len, " characters"));
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

}  // namespace

std::string NewUuid() {
  thread_local absl::BitGen gen;
  uint64_t hi = absl::Uniform<uint64_t>(gen);
  uint64_t lo = absl::Uniform<uint64_t>(gen);
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff,
                         lo >> 48, lo & 0xffffffffffffULL);
}

std::string MakeTaskId(absl::string_view node_id) {
  return absl::StrCat(node_id, std::string(1, kTaskIdSeparator), NewUuid());
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
