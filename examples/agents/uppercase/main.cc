// uppercase-agent: streams its result. Skill "uppercase": sends the input back
// upper-cased, one word per artifact chunk (append, last_chunk on the final
// word), with --chunk-delay between chunks; stops early when cancelled.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <vector>

#include "a2amesh/sdk/agent.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/command_line.h"
#include "common/example_agent.h"

namespace {

lf::a2a::v1::AgentCard UppercaseCard() {
  lf::a2a::v1::AgentCard card;
  card.set_name("Uppercase");
  card.set_description("Upper-cases text, streaming one word at a time.");
  card.set_version("0.1.0");
  card.mutable_capabilities()->set_streaming(true);
  card.add_default_input_modes("text/plain");
  card.add_default_output_modes("text/plain");
  auto* skill = card.add_skills();
  skill->set_id("uppercase");
  skill->set_name("Uppercase");
  skill->set_description("Returns the input in capitals, streamed word by word.");
  skill->add_tags("text");
  skill->add_tags("streaming");
  skill->add_examples("make this loud");
  return card;
}

void Uppercase(a2amesh::sdk::TaskContext& task, absl::Duration chunk_delay) {
  std::vector<std::string> words = absl::StrSplit(task.text(), ' ', absl::SkipWhitespace());
  if (words.empty()) {
    task.Reject("send some text to upper-case");
    return;
  }
  task.SetWorking("upper-casing " + std::to_string(words.size()) + " words");
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0 && task.WaitForCancel(chunk_delay)) {
      return;
    }
    std::string chunk = absl::AsciiStrToUpper(words[i]) + (i + 1 < words.size() ? " " : "");
    task.SendArtifact(a2amesh::sdk::TextArtifact("uppercase", "uppercase", chunk),
                      /*append=*/i > 0, /*last_chunk=*/i + 1 == words.size());
  }
  task.Complete("upper-cased by " + task.agent_id() + "@" + task.node_id());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"uppercase-agent: an a2a-mesh agent that streams its result"};
  a2amesh::examples::AgentFlags flags;
  flags.agent_id = "uppercase";
  a2amesh::examples::AddAgentFlags(app, &flags);
  std::string delay_text = "100ms";
  app.add_option("--chunk-delay", delay_text, "Pause between streamed chunks")
      ->capture_default_str();
  if (auto exit = a2amesh::examples::ParseCommandLine(app, argc, argv)) return *exit;
  absl::Duration chunk_delay;
  if (!absl::ParseDuration(delay_text, &chunk_delay)) {
    std::fprintf(stderr, "uppercase-agent: --chunk-delay: '%s' is not a duration\n",
                 delay_text.c_str());
    return 2;
  }
  // Without a pause between chunks the handler never blocks: it runs inline.
  return a2amesh::examples::ServeUntilSignal(
      "uppercase-agent", flags, UppercaseCard(),
      [chunk_delay](a2amesh::sdk::TaskContext& task) { Uppercase(task, chunk_delay); },
      /*inline_handler=*/chunk_delay == absl::ZeroDuration());
}
