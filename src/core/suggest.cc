#include "core/suggest.h"

#include <algorithm>

namespace a2amesh {

int EditDistance(std::string_view a, std::string_view b) {
  // Three rows of the classic table: i-2, i-1 and i.
  const size_t n = b.size();
  std::vector<int> before(n + 1), previous(n + 1), current(n + 1);
  for (size_t j = 0; j <= n; ++j) previous[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = static_cast<int>(i);
    for (size_t j = 1; j <= n; ++j) {
      const int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        current[j] = std::min(current[j], before[j - 2] + 1);
      }
    }
    std::swap(before, previous);
    std::swap(previous, current);
  }
  return previous[n];
}

std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates) {
  const int limit = std::max<int>(1, static_cast<int>(word.size()) / 3);
  std::string best;
  int best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    const int distance = EditDistance(word, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (!best.empty() || word.empty()) return best;
  std::string prefixed;
  for (const std::string& candidate : candidates) {
    if (std::string_view(candidate).substr(0, word.size()) != word) continue;
    if (!prefixed.empty()) return "";  // ambiguous
    prefixed = candidate;
  }
  return prefixed;
}

}  // namespace a2amesh
