#include "rpc/grpc_log.h"

#include <grpc/support/log.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/log.h"

namespace a2amesh::rpc {
namespace {

void Forward(gpr_log_func_args* args) {
  const LogLevel level = args->severity == GPR_LOG_SEVERITY_DEBUG  ? LogLevel::kDebug
                         : args->severity == GPR_LOG_SEVERITY_INFO ? LogLevel::kInfo
                                                                   : LogLevel::kError;
  if (!LogEnabled(level)) return;
  absl::string_view file = args->file != nullptr ? args->file : "";
  if (const size_t slash = file.rfind('/'); slash != absl::string_view::npos) {
    file.remove_prefix(slash + 1);
  }
  LogLine(level, "grpc")
      .With("message", args->message != nullptr ? args->message : "")
      .With("source", absl::StrCat(file, ":", args->line));
}

}  // namespace

void RouteGrpcLogs() { gpr_set_log_function(&Forward); }

}  // namespace a2amesh::rpc
