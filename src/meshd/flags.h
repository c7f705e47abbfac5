#ifndef A2AMESH_MESHD_FLAGS_H_
#define A2AMESH_MESHD_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/log.h"
#include "node/node.h"

namespace a2amesh::meshd {

// meshd's command line, with each flag also read from MESHD_<FLAG> and from an
// optional --config file (TOML or INI, keys named like the flags).
struct MeshdConfig {
  NodeOptions node;
  LogFormat log_format = LogFormat::kText;
  LogLevel log_level = LogLevel::kInfo;
  // Written once the node serves: {"node_id": ..., "grpc_address": ...}.
  std::string ready_file;
  // Set when the command line asked for --help or --version: print this and exit.
  std::string exit_message;
  int exit_code = 0;
};

// Parses argv (and the environment). Bad input is INVALID_ARGUMENT naming the
// flag; --help and --version set exit_message instead.
absl::StatusOr<MeshdConfig> ParseFlags(int argc, const char* const* argv);

}  // namespace a2amesh::meshd

#endif  // A2AMESH_MESHD_FLAGS_H_
