#ifndef A2AMESH_MESHCTL_CONFIG_H_
#define A2AMESH_MESHCTL_CONFIG_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// meshctl's config file: named contexts, each a node to talk to and how (as
// kubeconfig holds clusters and credentials). JSON:
//   {"current-context": "prod",
//    "contexts": {"prod": {"server": "mesh.example.com:7400", "tls": true,
//                          "tls-ca": "/etc/a2a-mesh/ca.pem", "token-file": "..."}}}
namespace a2amesh::meshctl {

struct Context {
  std::string server;
  bool tls = false;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  // A bearer token, or the file it is read from.
  std::string token;
  std::string token_file;
};

struct Config {
  std::string current_context;
  std::map<std::string, Context> contexts;
};

// $A2AMESH_CONFIG, else $XDG_CONFIG_HOME/a2a-mesh/config.json, else
// ~/.config/a2a-mesh/config.json.
std::string DefaultConfigPath();

// A missing file is an empty config; a malformed one is INVALID_ARGUMENT
// naming the file and what is wrong.
absl::StatusOr<Config> LoadConfig(const std::string& path);

// Writes the file (and its directory), readable by its owner only: it may
// hold tokens.
absl::Status SaveConfig(const std::string& path, const Config& config);

}  // namespace a2amesh::meshctl

#endif  // A2AMESH_MESHCTL_CONFIG_H_
