#ifndef A2AMESH_EXAMPLES_COMMON_COMMAND_LINE_H_
#define A2AMESH_EXAMPLES_COMMON_COMMAND_LINE_H_

#include <CLI/CLI.hpp>
#include <optional>

namespace a2amesh::examples {

// Parses the command line as CLI11_PARSE does, except that a usage error
// exits 2, as meshd, meshctl and the Unix tools do (CLI11's own codes, 105 to
// 115, mean nothing to a shell script). Returns main's exit code when the
// program should stop (after --help: 0), nothing when it should go on.
inline std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints the help or the error
    return code == 0 ? 0 : 2;
  }
  return std::nullopt;
}

}  // namespace a2amesh::examples

#endif  // A2AMESH_EXAMPLES_COMMON_COMMAND_LINE_H_
