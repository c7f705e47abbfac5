// planner-agent: composes other agents' work. Skill "plan": runs the input
// through every skill named by --steps at once, as subtasks delegated through
// the node (so they run on agents anywhere in the mesh), reports each as it
// finishes, and answers with one artifact holding every step's result.
//
//   planner-agent --node 127.0.0.1:7400 --steps uppercase,wordcount

#include <CLI/CLI.hpp>
#include <cstdio>
#include <future>
#include <string>
#include <vector>

#include "a2amesh/sdk/agent.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/command_line.h"
#include "common/example_agent.h"
#include "google/protobuf/util/json_util.h"

namespace {

lf::a2a::v1::AgentCard PlannerCard() {
  lf::a2a::v1::AgentCard card;
  card.set_name("Planner");
  card.set_description("Splits a request into subtasks for other skills and composes the results.");
  card.set_version("0.1.0");
  card.mutable_capabilities()->set_streaming(true);
  card.add_default_input_modes("text/plain");
  card.add_default_output_modes("text/plain");
  auto* skill = card.add_skills();
  skill->set_id("plan");
  skill->set_name("Plan");
  skill->set_description("Runs the input through several skills at once and composes the results.");
  skill->add_tags("planning");
  skill->add_tags("composition");
  skill->add_examples("make this loud and count its words");
  return card;
}

// A message's text parts.
std::string Text(const lf::a2a::v1::Message& message) {
  std::string text;
  for (const auto& part : message.parts()) text += part.text();
  return text;
}

// A subtask's result as text: each artifact's parts (data parts as JSON),
// artifacts separated by " | ".
std::string ResultText(const lf::a2a::v1::Task& task) {
  std::vector<std::string> artifacts;
  for (const auto& artifact : task.artifacts()) {
    std::string text;
    for (const auto& part : artifact.parts()) {
      if (part.has_text()) {
        text += part.text();
      } else if (part.has_data()) {
        std::string json;
        (void)google::protobuf::util::MessageToJsonString(part.data(), &json);
        text += json;
      }
    }
    artifacts.push_back(std::move(text));
  }
  if (artifacts.empty()) {
    return Text(task.status().message());
  }
  return absl::StrJoin(artifacts, " | ");
}

void Plan(a2amesh::sdk::TaskContext& task, const std::vector<std::string>& steps) {
  const std::string input = task.text();
  task.SetWorking(absl::StrCat("delegating to ", absl::StrJoin(steps, ", ")));
  std::vector<std::future<absl::StatusOr<lf::a2a::v1::Task>>> running;
  for (const std::string& skill : steps) {
    running.push_back(std::async(std::launch::async, [&task, skill, input] {
      return task.Delegate(a2amesh::sdk::TextSubtask(skill, input));
    }));
  }
  std::vector<std::string> sections;
  std::vector<std::string> failures;
  for (size_t i = 0; i < steps.size(); ++i) {
    absl::StatusOr<lf::a2a::v1::Task> result = running[i].get();
    if (!result.ok()) {
      failures.push_back(absl::StrCat(steps[i], ": ", result.status().message()));
      continue;
    }
    if (result->status().state() != lf::a2a::v1::TASK_STATE_COMPLETED) {
      failures.push_back(absl::StrCat(steps[i], ": subtask ", result->id(), " ended ",
                                      lf::a2a::v1::TaskState_Name(result->status().state()), " ",
                                      ResultText(*result)));
      continue;
    }
    // The subtask's final status message says who did it (e.g. "upper-cased by uppercase@n2").
    std::string who = Text(result->status().message());
    task.SetWorking(absl::StrCat(steps[i], " done", who.empty() ? "" : ": " + who, " (subtask ",
                                 result->id(), ")"));
    sections.push_back(absl::StrCat("[", steps[i], "] ", ResultText(*result)));
  }
  if (task.cancelled()) {
    return;
  }
  if (!failures.empty()) {
    task.Fail(absl::StrCat("steps failed: ", absl::StrJoin(failures, "; ")));
    return;
  }
  task.SendArtifact(a2amesh::sdk::TextArtifact("plan", "plan", absl::StrJoin(sections, "\n")));
  task.Complete(absl::StrCat("composed ", steps.size(), " steps"));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"planner-agent: composes other agents' skills through delegation"};
  a2amesh::examples::AgentFlags flags;
  flags.agent_id = "planner";
  a2amesh::examples::AddAgentFlags(app, &flags);
  std::string steps_text = "uppercase,wordcount";
  app.add_option("--steps", steps_text, "Skills to run the input through, comma-separated")
      ->capture_default_str();
  if (auto exit = a2amesh::examples::ParseCommandLine(app, argc, argv)) return *exit;
  std::vector<std::string> steps = absl::StrSplit(steps_text, ',', absl::SkipWhitespace());
  if (steps.empty()) {
    std::fprintf(stderr, "planner-agent: --steps: name at least one skill\n");
    return 2;
  }
  return a2amesh::examples::ServeUntilSignal(
      "planner-agent", flags, PlannerCard(),
      [steps](a2amesh::sdk::TaskContext& task) { Plan(task, steps); });
}
