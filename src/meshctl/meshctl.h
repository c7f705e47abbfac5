#ifndef A2AMESH_MESHCTL_MESHCTL_H_
#define A2AMESH_MESHCTL_MESHCTL_H_

#include <ostream>

namespace a2amesh::meshctl {

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // the call failed, or what it found is a failure
inline constexpr int kExitUsage = 2;  // the command line is wrong

// Runs meshctl with `argv`; what it prints goes to `out`, errors to `err`.
// Returns the exit code.
int Run(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

// The shell completion script for `shell` ("bash" or "zsh"); "" for another.
const char* CompletionScript(const char* shell);

}  // namespace a2amesh::meshctl

#endif  // A2AMESH_MESHCTL_MESHCTL_H_
