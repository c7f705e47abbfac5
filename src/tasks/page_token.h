#ifndef A2AMESH_TASKS_PAGE_TOKEN_H_
#define A2AMESH_TASKS_PAGE_TOKEN_H_

#include <cstdint>
#include <string>

#include "a2amesh/task_store.h"
#include "absl/status/status.h"

// ListTasks page tokens: opaque to clients, base64url("<status ms>/<task id>"),
// the position after which the next page starts.
namespace a2amesh::tasks {

std::string EncodePageToken(int64_t status_unix_ms, const std::string& task_id);

// Sets `query`'s cursor from `token`; INVALID_ARGUMENT naming page_token if it
// is not one this node issued.
absl::Status DecodePageToken(const std::string& token, TaskQuery* query);

}  // namespace a2amesh::tasks

#endif  // A2AMESH_TASKS_PAGE_TOKEN_H_
