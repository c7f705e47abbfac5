#ifndef A2AMESH_CORE_SUGGEST_H_
#define A2AMESH_CORE_SUGGEST_H_

#include <string>
#include <string_view>
#include <vector>

namespace a2amesh {

// The number of single-character insertions, deletions, substitutions and
// swaps of two neighbours that turn `a` into `b` (optimal string alignment).
int EditDistance(std::string_view a, std::string_view b);

// The candidate a mistyped `word` most likely meant, for "did you mean ...?":
// the nearest by EditDistance if it is near enough to be a typo (at most a
// third of the word's length, and at least 1), or one that starts with
// `word` when it is the only one. Empty when none is.
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace a2amesh

#endif  // A2AMESH_CORE_SUGGEST_H_
