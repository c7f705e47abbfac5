#include "meshctl/meshctl.h"

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "a2amesh/v1/admin.grpc.pb.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/a2a_error.h"
#include "core/ids.h"
#include "core/suggest.h"
#include "core/version.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "meshctl/client.h"
#include "meshctl/config.h"
#include "meshctl/output.h"
#include "rpc/grpc_status.h"
#include "trace/span_context.h"
#include "trace/tracer.h"

namespace a2amesh::meshctl {
namespace {

using google::protobuf::util::TimeUtil;

// Unary calls wait this long unless --timeout says otherwise; `send` and the
// streams wait as long as the task or the watch lasts.
constexpr absl::Duration kCallTimeout = absl::Seconds(30);

std::string Lower(std::string name) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (char& c : name) {
    if (c == '_') c = '-';
  }
  return name;
}

// An enum value's name as people write it: prefix dropped, lower-case, dashes.
std::string EnumName(const std::string& name, absl::string_view prefix) {
  return Lower(absl::StartsWith(name, prefix) ? name.substr(prefix.size()) : name);
}

// Help footers: CLI11 prints them without a final newline.
std::string Footer(const std::string& text) { return text + "\n"; }

std::string Load(int outstanding, int max) { return absl::StrCat(outstanding, "/", max); }

std::string JoinOrDash(const google::protobuf::RepeatedPtrField<std::string>& items) {
  return items.empty() ? "-" : absl::StrJoin(items, ",");
}

std::string OrDash(const std::string& text) { return text.empty() ? "-" : text; }

// What every verb needs: the connection, the output format, the streams.
struct Env {
  Client& client;
  Format format;
  std::ostream& out;
  std::ostream& err;
  const JsonPathTemplate* jsonpath = nullptr;  // -o jsonpath=
  bool headers = true;                         // not --no-headers

  // A document (JSON, YAML or the jsonpath template), not text for people.
  bool structured() const {
    return format == Format::kJson || format == Format::kYaml || format == Format::kJsonPath;
  }
  bool wide() const { return format == Format::kWide; }
  bool names() const { return format == Format::kName; }

  // Prints `document` per -o (json, yaml or jsonpath); the exit code (a path
  // the document does not have is an error).
  int Print(const google::protobuf::Message& document) const {
    if (format != Format::kJsonPath) {
      PrintDocument(document, format, out);
      return kExitOk;
    }
    absl::StatusOr<std::string> text = RenderJsonPath(document);
    if (!text.ok()) {
      err << "error: " << text.status().message() << "\n";
      return kExitError;
    }
    out << *text;
    return kExitOk;
  }
  // One document of a stream: a JSON line, a YAML document, or the template.
  void PrintStreamed(const google::protobuf::Message& document) const {
    if (format == Format::kJson) {
      out << ToJson(document, /*pretty=*/false) << std::endl;
    } else if (format == Format::kYaml) {
      out << "---\n" << ToYaml(document) << std::flush;
    } else if (absl::StatusOr<std::string> text = RenderJsonPath(document); text.ok()) {
      out << *text << std::flush;
    } else {
      err << "error: " << text.status().message() << "\n";
    }
  }
  // A table per -o name and --no-headers.
  void PrintTable(const Table& table) const { table.Print(out, headers, names()); }

  absl::StatusOr<std::string> RenderJsonPath(const google::protobuf::Message& document) const {
    google::protobuf::Value value;  // our own JSON always parses
    (void)google::protobuf::util::JsonStringToMessage(ToJson(document, false), &value);
    return jsonpath->Render(value);
  }

  // Prints the error of a failed call; returns the exit code.
  int Fail(const grpc::Status& status) const {
    err << "error: " << DescribeError(status, client.server()) << "\n";
    return kExitError;
  }
  // Prints what is wrong with the command line; returns the exit code.
  int Usage(const absl::Status& status) const {
    err << "error: " << status.message() << "\n";
    return kExitUsage;
  }
  std::unique_ptr<v1::Admin::Stub> Admin() const { return v1::Admin::NewStub(client.channel()); }
  std::unique_ptr<lf::a2a::v1::A2AService::Stub> A2a() const {
    return lf::a2a::v1::A2AService::NewStub(client.channel());
  }
};

// Makes a unary call (`rpc(context, response)`) and, for -o json|yaml, prints
// its response. Returns the exit code when that is all, or nullopt for the
// caller to print a table.
template <typename Response, typename Rpc>
std::optional<int> Fetch(const Env& env, Response* response, Rpc rpc) {
  std::unique_ptr<grpc::ClientContext> context = env.client.Context(kCallTimeout);
  grpc::Status status = rpc(context.get(), response);
  if (!status.ok()) return env.Fail(status);
  if (env.structured()) return env.Print(*response);
  return std::nullopt;
}

// ---- nodes, agents, card, skills -------------------------------------------

int Nodes(const Env& env) {
  v1::ListNodesResponse response;
  if (auto done = Fetch(env, &response, [&](auto* context, auto* r) {
        return env.Admin()->ListNodes(context, {}, r);
      })) {
    return *done;
  }
  std::vector<std::string> header = {"NODE", "STATE", "ADDRESS", "AGENTS"};
  if (env.wide()) header.insert(header.end(), {"INCARNATION", "ANSWERED"});
  Table table(header);
  const absl::Time now = absl::Now();
  for (const v1::NodeSummary& node : response.nodes()) {
    std::string state = EnumName(v1::NodeState_Name(node.state()), "NODE_STATE_");
    if (node.has_down_since()) absl::StrAppend(&state, " ", Age(node.down_since(), now));
    std::vector<std::string> row = {
        OrDash(node.node_id()), state, node.address(),
        node.state() == v1::NODE_STATE_DOWN ? "-" : absl::StrCat(node.agents())};
    if (env.wide()) {
      row.push_back(node.incarnation() == 0 ? "-" : absl::StrCat(node.incarnation()));
      row.push_back(node.self() ? "yes" : "");
    }
    table.AddRow(row);
  }
  env.PrintTable(table);
  return kExitOk;
}

struct AgentsFlags {
  std::string skill;
  std::vector<std::string> tags;
  std::string node;
};

// How a node reaches an agent it hosts by URL: "JSONRPC 0.3.0 CARD_URL";
// "-" for an agent registered over AgentHost.
std::string Via(const v1::AgentInfo& agent) {
  if (!agent.has_remote()) return "-";
  const v1::RemoteEndpoint& remote = agent.remote();
  if (remote.binding().empty()) return remote.card_url();  // its card never answered
  return absl::StrCat(remote.binding(), " ", remote.protocol_version(), " ", remote.card_url());
}

int Agents(const Env& env, const AgentsFlags& flags) {
  v1::ListAgentsRequest request;
  request.set_skill(flags.skill);
  for (const std::string& tag : flags.tags) request.add_tags(tag);
  request.set_node_id(flags.node);
  v1::ListAgentsResponse response;
  if (auto done = Fetch(env, &response, [&](auto* context, auto* r) {
        return env.Admin()->ListAgents(context, request, r);
      })) {
    return *done;
  }
  if (response.agents().empty()) {
    env.err << "no agents"
            << (flags.skill.empty() && flags.tags.empty() && flags.node.empty()
                    ? " are registered in the mesh"
                    : " match")
            << "\n";
    return kExitOk;
  }
  // Agents hosted by URL add how they are called.
  const bool any_remote = std::any_of(response.agents().begin(), response.agents().end(),
                                      [](const v1::AgentInfo& a) { return a.has_remote(); });
  std::vector<std::string> header = {"AGENT", "NODE", "SKILLS", "LOAD", "HEALTH"};
  if (any_remote) header.push_back("VIA");
  if (env.wide()) header.insert(header.end(), {"NAME", "VERSION", "TAGS", "AGE"});
  if (env.wide() && any_remote) header.insert(header.end(), {"FAILED-CALLS", "REASON"});
  Table table(header);
  const absl::Time now = absl::Now();
  for (const v1::AgentInfo& agent : response.agents()) {
    const bool unavailable = agent.health() == v1::AGENT_HEALTH_UNAVAILABLE;
    std::vector<std::string> row = {
        agent.id(), agent.node_id(), JoinOrDash(agent.skills()),
        unavailable ? "-" : Load(agent.outstanding(), agent.max_concurrency()),
        EnumName(v1::AgentHealth_Name(agent.health()), "AGENT_HEALTH_")};
    if (any_remote) row.push_back(Via(agent));
    if (env.wide()) {
      row.insert(row.end(),
                 {OrDash(agent.name()), OrDash(agent.version()), JoinOrDash(agent.tags()),
                  unavailable ? "-" : Age(agent.registered_at(), now)});
    }
    if (env.wide() && any_remote) {
      row.insert(row.end(), {agent.has_remote() ? absl::StrCat(agent.remote().failures()) : "-",
                             OrDash(agent.remote().error())});
    }
    table.AddRow(row);
  }
  env.PrintTable(table);
  return kExitOk;
}

int AddRemoteAgent(const Env& env, const std::string& url, const std::string& id,
                   const std::string& node, const std::string& token_file, int max_concurrency) {
  v1::AddRemoteAgentRequest request;
  request.set_card_url(url);
  request.set_agent_id(id);
  request.set_node_id(node);
  request.set_max_concurrency(max_concurrency);
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    token = std::string(absl::StripAsciiWhitespace(token));
    if (!in.is_open() || token.empty()) {
      env.err << "error: --agent-token-file " << token_file
              << (in.is_open() ? " is empty" : " cannot be read") << "\n";
      return kExitError;
    }
    request.set_bearer_token(token);
  }
  v1::AgentInfo agent;
  if (auto done = Fetch(env, &agent, [&](auto* context, auto* r) {
        return env.Admin()->AddRemoteAgent(context, request, r);
      })) {
    return *done;
  }
  if (env.structured()) return env.Print(agent);
  env.out << "agent " << agent.id() << " hosted by node " << agent.node_id() << ", called over "
          << agent.remote().binding() << " (A2A " << agent.remote().protocol_version() << ") at "
          << agent.remote().url() << "; skills: " << JoinOrDash(agent.skills()) << "\n";
  return kExitOk;
}

int RemoveRemoteAgent(const Env& env, const std::string& which, const std::string& node) {
  v1::RemoveRemoteAgentRequest request;
  request.set_agent(which);
  request.set_node_id(node);
  v1::RemoveRemoteAgentResponse response;
  if (auto done = Fetch(env, &response, [&](auto* context, auto* r) {
        return env.Admin()->RemoveRemoteAgent(context, request, r);
      })) {
    return *done;
  }
  env.out << "remote agent " << which << " removed; it is out of routing\n";
  return kExitOk;
}

int Card(const Env& env, const std::string& id) {
  v1::GetAgentRequest request;
  request.set_id(id);
  v1::AgentInfo agent;
  grpc::Status status =
      env.Admin()->GetAgent(env.client.Context(kCallTimeout).get(), request, &agent);
  if (!status.ok()) return env.Fail(status);
  const lf::a2a::v1::AgentCard& card = agent.card();
  if (env.structured()) return env.Print(card);
  if (env.names()) {
    env.out << agent.id() << "\n";
    return kExitOk;
  }
  env.out << "Agent:        " << agent.id() << "\n"
          << "Name:         " << card.name() << "\n"
          << "Description:  " << card.description() << "\n"
          << "Version:      " << OrDash(card.version()) << "\n"
          << "Provider:     " << OrDash(card.provider().organization()) << "\n"
          << "Streaming:    " << (card.capabilities().streaming() ? "yes" : "no") << "\n"
          << "Input modes:  " << JoinOrDash(card.default_input_modes()) << "\n"
          << "Output modes: " << JoinOrDash(card.default_output_modes()) << "\n"
          << "Load:         " << Load(agent.outstanding(), agent.max_concurrency()) << " ("
          << EnumName(v1::AgentHealth_Name(agent.health()), "AGENT_HEALTH_") << ")\n\n";
  Table table({"SKILL", "NAME", "TAGS", "DESCRIPTION"});
  for (const lf::a2a::v1::AgentSkill& skill : card.skills()) {
    table.AddRow({skill.id(), skill.name(), JoinOrDash(skill.tags()), skill.description()});
  }
  env.PrintTable(table);
  return kExitOk;
}

int Skills(const Env& env) {
  v1::ListSkillsResponse response;
  if (auto done = Fetch(env, &response, [&](auto* context, auto* r) {
        return env.Admin()->ListSkills(context, {}, r);
      })) {
    return *done;
  }
  if (response.skills().empty()) {
    env.err << "no skills: no agents are registered in the mesh\n";
    return kExitOk;
  }
  std::vector<std::string> header = {"SKILL", "AGENTS", "READY", "TAGS"};
  if (env.wide()) header.insert(header.end(), {"NAME", "AGENT IDS", "DESCRIPTION"});
  Table table(header);
  for (const v1::SkillInfo& skill : response.skills()) {
    std::vector<std::string> row = {skill.id(), absl::StrCat(skill.agents_size()),
                                    absl::StrCat(skill.ready()), JoinOrDash(skill.tags())};
    if (env.wide()) {
      row.insert(row.end(),
                 {OrDash(skill.name()), JoinOrDash(skill.agents()), OrDash(skill.description())});
    }
    table.AddRow(row);
  }
  env.PrintTable(table);
  return kExitOk;
}

// ---- tasks -------------------------------------------------------------------

struct TasksFlags {
  std::string state;
  std::string skill;
  std::string context;
  std::string agent;
  int limit = 50;
  bool local = false;
};

std::vector<std::string> TaskRow(const v1::TaskSummary& task, bool wide, absl::Time now,
                                 const std::string& prefix = "") {
  std::vector<std::string> row = {prefix + task.id(), StateName(task.state()), OrDash(task.skill()),
                                  OrDash(task.agent_id()), Age(task.updated_at(), now)};
  if (wide) {
    row.insert(row.end(), {OrDash(task.context_id()), OrDash(task.parent_task_id()),
                           Age(task.created_at(), now), OrDash(task.status_text()),
                           OrDash(task.principal()), OrDash(task.trace_id())});
  }
  return row;
}

std::vector<std::string> TaskHeader(bool wide) {
  std::vector<std::string> header = {"TASK", "STATE", "SKILL", "AGENT", "UPDATED"};
  if (wide) {
    header.insert(header.end(), {"CONTEXT", "PARENT", "CREATED", "STATUS", "CALLER", "TRACE"});
  }
  return header;
}

// "; no agent 'x' is in the mesh now ..." when `agent` (bare or agent@node)
// names none of the mesh's agents: a typo, or an agent that has left.
std::string UnknownAgentHint(const Env& env, const std::string& agent) {
  if (agent.empty()) return "";
  v1::ListAgentsResponse agents;
  if (!env.Admin()->ListAgents(env.client.Context(kCallTimeout).get(), {}, &agents).ok()) {
    return "";
  }
  std::vector<std::string> ids;
  for (const v1::AgentInfo& info : agents.agents()) {
    if (info.id() == agent || info.agent_id() == agent) return "";
    ids.push_back(info.agent_id());
  }
  std::string hint =
      absl::StrCat("; no agent '", agent, "' is in the mesh now (meshctl agents lists them)");
  if (std::string near = ClosestMatch(agent, ids); !near.empty()) {
    absl::StrAppend(&hint, "; did you mean '", near, "'?");
  }
  return hint;
}

int Tasks(const Env& env, const TasksFlags& flags) {
  v1::ListTasksAdminRequest request;
  if (!flags.state.empty()) {
    absl::StatusOr<lf::a2a::v1::TaskState> state = ParseState(flags.state);
    if (!state.ok()) return env.Usage(state.status());
    request.set_state(*state);
  }
  if (flags.limit < 1 || flags.limit > 1000) {
    return env.Usage(absl::InvalidArgumentError(
        absl::StrCat("--limit: must be between 1 and 1000, not ", flags.limit)));
  }
  request.set_skill(flags.skill);
  request.set_context_id(flags.context);
  request.set_agent_id(flags.agent);
  request.set_limit(flags.limit);
  request.set_all_nodes(!flags.local);
  v1::ListTasksAdminResponse response;
  std::optional<int> done = Fetch(env, &response, [&](auto* context, auto* r) {
    return env.Admin()->ListTasks(context, request, r);
  });
  for (const std::string& error : response.errors()) {
    env.err << "warning: " << error << "\n";
  }
  if (done) return *done;
  if (response.tasks().empty()) {
    env.err << "no tasks match" << UnknownAgentHint(env, flags.agent) << "\n";
    return kExitOk;
  }
  Table table(TaskHeader(env.wide()));
  const absl::Time now = absl::Now();
  for (const v1::TaskSummary& task : response.tasks()) {
    table.AddRow(TaskRow(task, env.wide(), now));
  }
  env.PrintTable(table);
  return kExitOk;
}

void AddTree(const v1::TaskTree& tree, const std::string& indent, bool last, bool root, bool wide,
             absl::Time now, Table* table, std::vector<std::string>* errors) {
  const std::string branch = root ? "" : indent + (last ? "└─ " : "├─ ");
  table->AddRow(TaskRow(tree.task(), wide, now, branch));
  for (const std::string& error : tree.errors()) {
    errors->push_back(absl::StrCat(tree.task().id(), ": ", error));
  }
  const std::string child_indent = root ? "" : indent + (last ? "   " : "│  ");
  for (int i = 0; i < tree.subtasks_size(); ++i) {
    AddTree(tree.subtasks(i), child_indent, i + 1 == tree.subtasks_size(), false, wide, now, table,
            errors);
  }
}

int TaskTree(const Env& env, const std::string& id) {
  v1::GetTaskTreeRequest request;
  request.set_task_id(id);
  v1::TaskTree tree;
  if (auto done = Fetch(env, &tree, [&](auto* context, auto* r) {
        return env.Admin()->GetTaskTree(context, request, r);
      })) {
    return *done;
  }
  Table table(TaskHeader(env.wide()));
  std::vector<std::string> errors;
  AddTree(tree, "", true, true, env.wide(), absl::Now(), &table, &errors);
  env.PrintTable(table);
  if (env.names()) return kExitOk;
  const lf::a2a::v1::Task& task = tree.task().task();
  if (!tree.task().principal().empty()) {
    // Every task of the tree is the caller's: its subtasks' agents act for it.
    env.out << "\nCaller: " << tree.task().principal() << "\n";
  }
  if (!tree.task().trace_id().empty()) {
    env.out << "\nTrace:  " << tree.task().trace_id() << "\n";
  }
  if (!tree.task().status_text().empty()) {
    env.out << "\nStatus: " << tree.task().status_text() << "\n";
  }
  for (const lf::a2a::v1::Artifact& artifact : task.artifacts()) {
    env.out << "\nArtifact " << OrDash(artifact.name()) << ":\n"
            << PartsText(artifact.parts()) << "\n";
  }
  for (const std::string& error : errors) env.err << "warning: " << error << "\n";
  return kExitOk;
}

// ---- send, cancel -------------------------------------------------------------

struct SendFlags {
  std::string skill;
  std::string agent;
  std::vector<std::string> tags;
  std::string data;
  std::string context;
  std::string task;
  std::vector<std::string> accept;
  bool stream = false;
  bool no_wait = false;
  std::vector<std::string> text;
};

// The --data value: JSON inline, or @file.
absl::StatusOr<google::protobuf::Value> ParseData(const std::string& data) {
  std::string json = data;
  std::string what = "the value";
  if (absl::StartsWith(data, "@")) {
    what = data.substr(1);
    std::ifstream in(what, std::ios::binary);
    if (!in) return absl::InvalidArgumentError(absl::StrCat("--data: cannot read ", what));
    std::ostringstream contents;
    contents << in.rdbuf();
    json = contents.str();
  }
  google::protobuf::Value value;
  auto status = google::protobuf::util::JsonStringToMessage(json, &value);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--data: ", what, " is not JSON (", status.message().as_string(), ")"));
  }
  return value;
}

absl::StatusOr<lf::a2a::v1::SendMessageRequest> SendRequest(const SendFlags& flags) {
  lf::a2a::v1::SendMessageRequest request;
  lf::a2a::v1::Message* message = request.mutable_message();
  message->set_message_id(NewUuid());
  message->set_role(lf::a2a::v1::ROLE_USER);
  message->set_context_id(flags.context);
  message->set_task_id(flags.task);
  const std::string text = absl::StrJoin(flags.text, " ");
  if (!text.empty()) message->add_parts()->set_text(text);
  if (!flags.data.empty()) {
    absl::StatusOr<google::protobuf::Value> data = ParseData(flags.data);
    if (!data.ok()) return data.status();
    lf::a2a::v1::Part* part = message->add_parts();
    *part->mutable_data() = *std::move(data);
    part->set_media_type("application/json");
  }
  if (message->parts().empty()) {
    return absl::InvalidArgumentError("send: give the message as TEXT, or --data");
  }
  request.set_tenant(flags.agent);
  auto& metadata = *request.mutable_metadata()->mutable_fields();
  if (!flags.skill.empty()) metadata["a2amesh/skill"].set_string_value(flags.skill);
  if (!flags.tags.empty()) {
    auto* tags = metadata["a2amesh/tags"].mutable_list_value();
    for (const std::string& tag : flags.tags) tags->add_values()->set_string_value(tag);
  }
  for (const std::string& mode : flags.accept) {
    request.mutable_configuration()->add_accepted_output_modes(mode);
  }
  if (flags.no_wait) {
    if (flags.stream) {
      return absl::InvalidArgumentError("send: --no-wait and --stream do not go together");
    }
    request.mutable_configuration()->set_return_immediately(true);
  }
  return request;
}

// Exit code for a task that stopped in `state`: failures are errors.
int TaskExit(const Env& env, const lf::a2a::v1::Task& task) {
  switch (task.status().state()) {
    case lf::a2a::v1::TASK_STATE_FAILED:
    case lf::a2a::v1::TASK_STATE_REJECTED:
    case lf::a2a::v1::TASK_STATE_CANCELED:
      env.err << "error: task " << task.id() << " " << StateName(task.status().state());
      if (!PartsText(task.status().message().parts()).empty()) {
        env.err << ": " << PartsText(task.status().message().parts());
      }
      env.err << "\n";
      return kExitError;
    default:
      return kExitOk;
  }
}

void PrintTask(const Env& env, const lf::a2a::v1::Task& task) {
  env.out << "task " << task.id() << " " << StateName(task.status().state());
  const std::string status = PartsText(task.status().message().parts());
  if (!status.empty()) env.out << ": " << status;
  env.out << "\n";
  for (const lf::a2a::v1::Artifact& artifact : task.artifacts()) {
    env.out << "[" << OrDash(artifact.name()) << "] " << PartsText(artifact.parts()) << "\n";
  }
}

// One streamed event as a line for people.
std::string EventLine(const lf::a2a::v1::StreamResponse& event) {
  switch (event.payload_case()) {
    case lf::a2a::v1::StreamResponse::kTask:
      return absl::StrCat("task ", event.task().id(), " ",
                          StateName(event.task().status().state()));
    case lf::a2a::v1::StreamResponse::kStatusUpdate: {
      const auto& status = event.status_update().status();
      std::string line = absl::StrCat("status ", StateName(status.state()));
      if (const std::string text = PartsText(status.message().parts()); !text.empty()) {
        absl::StrAppend(&line, ": ", text);
      }
      return line;
    }
    case lf::a2a::v1::StreamResponse::kArtifactUpdate: {
      const auto& update = event.artifact_update();
      std::string name = update.artifact().name().empty() ? update.artifact().artifact_id()
                                                          : update.artifact().name();
      return absl::StrCat("artifact ", name, update.append() ? " +" : "", ": ",
                          PartsText(update.artifact().parts()));
    }
    case lf::a2a::v1::StreamResponse::kMessage:
      return absl::StrCat("message: ", PartsText(event.message().parts()));
    case lf::a2a::v1::StreamResponse::PAYLOAD_NOT_SET:
      break;
  }
  return "event";
}

// A message that names no skill, agent or tag (and continues no task) goes to
// the node's default skill, or, without one, to any agent at all: refused
// then, with the skills to choose from. (When the node does not say, because
// this caller may not inspect it, the node decides.)
std::optional<int> RefuseUnaimed(const Env& env, const SendFlags& flags) {
  if (!flags.skill.empty() || !flags.agent.empty() || !flags.tags.empty() || !flags.task.empty()) {
    return std::nullopt;
  }
  v1::NodeInfo node;
  if (!env.Admin()->GetNode(env.client.Context(kCallTimeout).get(), {}, &node).ok() ||
      !node.default_skill().empty()) {
    return std::nullopt;
  }
  std::string message = absl::StrCat(
      "send: name a --skill, --agent or --tag: node ", node.node_id(),
      " has no default skill (meshd --default-skill)", " and would give the message to any agent");
  v1::ListSkillsResponse skills;
  if (env.Admin()->ListSkills(env.client.Context(kCallTimeout).get(), {}, &skills).ok() &&
      skills.skills_size() > 0) {
    std::vector<std::string> ids;
    for (const v1::SkillInfo& skill : skills.skills()) ids.push_back(skill.id());
    absl::StrAppend(&message, "; the mesh's skills: ", absl::StrJoin(ids, ", "));
  }
  return env.Usage(absl::InvalidArgumentError(message));
}

// While it lives, Ctrl-C (SIGINT) cancels `context`'s call instead of killing
// meshctl, so that a verb following a stream can say what it leaves behind.
// The handler only writes a byte to a pipe (all a signal handler may do); a
// thread reads it and cancels the call.
class InterruptGuard {
 public:
  explicit InterruptGuard(grpc::ClientContext* context) {
    if (pipe(pipe_) != 0) return;
    write_end_.store(pipe_[1]);
    struct sigaction action {};
    action.sa_handler = [](int) {
      const char byte = 1;
      (void)!write(write_end_.load(), &byte, 1);
    };
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_);
    waiter_ = std::thread([this, context] {
      char byte = 0;
      if (read(pipe_[0], &byte, 1) == 1 && byte == 1) {
        interrupted_.store(true);
        context->TryCancel();
      }
    });
  }
  ~InterruptGuard() {
    if (!waiter_.joinable()) return;
    sigaction(SIGINT, &previous_, nullptr);
    const char byte = 0;  // wakes the waiter without cancelling
    (void)!write(pipe_[1], &byte, 1);
    waiter_.join();
    close(pipe_[0]);
    close(pipe_[1]);
  }
  bool interrupted() const { return interrupted_.load(); }

 private:
  static inline std::atomic<int> write_end_{-1};
  int pipe_[2] = {-1, -1};
  struct sigaction previous_ {};
  std::thread waiter_;
  std::atomic<bool> interrupted_{false};
};

// What a person interrupting a stream leaves behind, and how to get back.
void SayTaskKeepsRunning(const Env& env, const std::string& id) {
  if (id.empty()) {
    env.err << "\ninterrupted before the node named the task\n";
    return;
  }
  env.err << "\ntask " << id << " keeps running. Follow it: meshctl task " << id
          << " --follow; cancel it: meshctl cancel " << id << "\n";
}

constexpr int kExitInterrupted = 130;  // 128 + SIGINT, as shells report it

int Send(const Env& env, const SendFlags& flags) {
  absl::StatusOr<lf::a2a::v1::SendMessageRequest> built = SendRequest(flags);
  if (!built.ok()) return env.Usage(built.status());
  if (std::optional<int> refused = RefuseUnaimed(env, flags)) return *refused;
  const lf::a2a::v1::SendMessageRequest& request = *built;
  auto stub = env.A2a();
  // meshctl starts the task's trace (sampled: an operator asked for this
  // task), so that it can name it: the nodes' spans are its children.
  trace::SpanContext trace;
  trace.trace_id = trace::NewTraceId();
  trace.span_id = trace::NewSpanId();
  trace.flags = 0x01;
  auto traced = [&](std::unique_ptr<grpc::ClientContext> context) {
    context->AddMetadata(std::string(trace::kTraceparentKey), trace::FormatTraceparent(trace));
    return context;
  };
  // -o wide names the trace, after the result (or a stream's events).
  auto say_trace = [&] {
    if (env.wide()) env.out << "Trace:    " << trace.TraceIdHex() << "\n";
  };
  if (!flags.stream) {
    lf::a2a::v1::SendMessageResponse response;
    grpc::Status status = stub->SendMessage(traced(env.client.Context(absl::ZeroDuration())).get(),
                                            request, &response);
    if (!status.ok()) return env.Fail(status);
    if (env.structured()) {
      if (int printed = env.Print(response); printed != kExitOk) return printed;
    } else if (env.names()) {
      env.out << (response.has_task() ? response.task().id() : response.message().message_id())
              << "\n";
    } else if (response.has_task()) {
      PrintTask(env, response.task());
      say_trace();
    } else {
      env.out << "message: " << PartsText(response.message().parts()) << "\n";
      say_trace();
    }
    return response.has_task() ? TaskExit(env, response.task()) : kExitOk;
  }
  auto context = traced(env.client.Context(absl::ZeroDuration()));
  InterruptGuard interrupt(context.get());
  auto reader = stub->SendStreamingMessage(context.get(), request);
  lf::a2a::v1::StreamResponse event;
  lf::a2a::v1::Task task;
  while (reader->Read(&event)) {
    if (env.structured()) {
      env.PrintStreamed(event);  // JSON: one document per line
    } else if (!env.names()) {
      env.out << EventLine(event) << std::endl;
    }
    if (event.has_task()) task = event.task();
    if (event.has_status_update()) {
      task.set_id(event.status_update().task_id());
      *task.mutable_status() = event.status_update().status();
    }
  }
  grpc::Status status = reader->Finish();
  if (interrupt.interrupted()) {
    SayTaskKeepsRunning(env, task.id());
    return kExitInterrupted;
  }
  if (!status.ok()) return env.Fail(status);
  if (env.names()) env.out << task.id() << "\n";
  say_trace();
  return TaskExit(env, task);
}

// meshctl task ID --follow: the task's events as they happen (SubscribeToTask),
// from the task as it stands; a task that has ended prints as `task ID` does.
int Follow(const Env& env, const std::string& id) {
  lf::a2a::v1::SubscribeToTaskRequest request;
  request.set_id(id);
  auto context = env.client.Context(absl::ZeroDuration());
  InterruptGuard interrupt(context.get());
  auto reader = env.A2a()->SubscribeToTask(context.get(), request);
  lf::a2a::v1::StreamResponse event;
  lf::a2a::v1::Task task;
  task.set_id(id);
  while (reader->Read(&event)) {
    if (env.structured()) {
      env.PrintStreamed(event);
    } else if (!env.names()) {
      env.out << EventLine(event) << std::endl;
    }
    if (event.has_task()) task = event.task();
    if (event.has_status_update()) *task.mutable_status() = event.status_update().status();
  }
  grpc::Status status = reader->Finish();
  if (interrupt.interrupted()) {
    env.err << "\nstopped following task " << id << "; it keeps running\n";
    return kExitInterrupted;
  }
  if (!status.ok()) {
    if (GetA2aError(rpc::FromGrpcStatus(status)) == A2aError::kUnsupportedOperation) {
      return TaskTree(env, id);  // it has ended: nothing more will happen
    }
    return env.Fail(status);
  }
  return TaskExit(env, task);
}

int Cancel(const Env& env, const std::string& id) {
  lf::a2a::v1::CancelTaskRequest request;
  request.set_id(id);
  lf::a2a::v1::Task task;
  if (auto done = Fetch(env, &task, [&](auto* context, auto* r) {
        return env.A2a()->CancelTask(context, request, r);
      })) {
    return *done;
  }
  env.out << "task " << task.id() << " " << StateName(task.status().state()) << "\n";
  return kExitOk;
}

// ---- route, watch, drain -------------------------------------------------------

struct RouteFlags {
  std::string skill;
  std::string agent;
  std::vector<std::string> tags;
  std::vector<std::string> input;
  std::vector<std::string> accept;
  std::vector<std::string> hops;
};

std::string Score(double value) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(2);
  out << value;
  return out.str();
}

int Route(const Env& env, const RouteFlags& flags) {
  v1::ExplainRouteRequest request;
  request.set_skill(flags.skill);
  request.set_agent_id(flags.agent);
  for (const auto& tag : flags.tags) request.add_tags(tag);
  for (const auto& mode : flags.input) request.add_input_modes(mode);
  for (const auto& mode : flags.accept) request.add_accepted_output_modes(mode);
  for (const auto& hop : flags.hops) request.add_hops(hop);
  v1::RouteExplanation explanation;
  grpc::Status status =
      env.Admin()->ExplainRoute(env.client.Context(kCallTimeout).get(), request, &explanation);
  if (!status.ok()) return env.Fail(status);
  if (env.structured()) {
    if (int printed = env.Print(explanation); printed != kExitOk) return printed;
  } else if (env.names()) {
    if (!explanation.pick_agent_id().empty()) env.out << explanation.pick_agent_id() << "\n";
  } else {
    env.out << "Selector: " << explanation.selector() << "\n";
    if (explanation.pick_agent_id().empty()) {
      env.out << "Pick:     none\n";
    } else {
      env.out << "Pick:     " << explanation.pick_agent_id() << " on node "
              << explanation.pick_node_id();
      if (explanation.tied() > 1) {
        env.out << " (or one of the " << explanation.tied() << " that share its score)";
      }
      env.out << "\n";
      for (const v1::RouteCandidate& c : explanation.candidates()) {
        if (c.agent_id() != explanation.pick_agent_id() || !c.has_remote()) continue;
        // The task would be an A2A call from that node to the agent's server.
        env.out << "Calls:    " << c.remote().binding() << " (A2A " << c.remote().protocol_version()
                << ") at " << c.remote().url() << ": an A2A agent that node " << c.node_id()
                << " hosts by URL (" << c.remote().card_url() << ")\n";
      }
    }
    if (env.wide()) env.out << "Policy:   " << explanation.policy() << "\n";
    env.out << "\n";
    const bool any_remote =
        std::any_of(explanation.candidates().begin(), explanation.candidates().end(),
                    [](const v1::RouteCandidate& c) { return c.has_remote(); });
    std::vector<std::string> header = {"AGENT", "NODE", "SKILL", "LOAD", "SCORE", "VERDICT"};
    if (any_remote) header.push_back("VIA");
    Table table(header);
    for (const v1::RouteCandidate& c : explanation.candidates()) {
      std::string verdict = !c.excluded().empty()                         ? "out: " + c.excluded()
                            : c.agent_id() == explanation.pick_agent_id() ? "pick"
                                                                          : "candidate";
      std::vector<std::string> row = {c.agent_id(),
                                      c.node_id(),
                                      OrDash(c.skill()),
                                      Load(c.outstanding(), c.max_concurrency()),
                                      c.excluded().empty() ? Score(c.score()) : "-",
                                      verdict};
      if (any_remote) {
        row.push_back(c.has_remote()
                          ? absl::StrCat(c.remote().binding(), " ", c.remote().protocol_version(),
                                         " ", c.remote().card_url())
                          : "-");
      }
      table.AddRow(row);
    }
    if (!table.empty()) env.PrintTable(table);
  }
  if (!explanation.error().empty()) {
    env.err << "error: " << explanation.error() << "\n";
    return kExitError;
  }
  return kExitOk;
}

int Watch(const Env& env) {
  auto context = env.client.Context(absl::ZeroDuration());
  auto reader = env.Admin()->WatchCatalog(context.get(), v1::WatchCatalogRequest());
  v1::CatalogEvent event;
  bool header = false;
  while (reader->Read(&event)) {
    if (env.structured()) {
      env.PrintStreamed(event);
      continue;
    }
    if (!header && env.headers) {
      env.out << absl::StrFormat("%-8s  %-13s  %-12s  %-24s  %s", "TIME", "EVENT", "NODE", "AGENT",
                                 "SKILLS")
              << std::endl;
      header = true;
    }
    const absl::Time time = absl::FromUnixMillis(TimeUtil::TimestampToMilliseconds(event.time()));
    env.out << absl::StrFormat("%-8s  %-13s  %-12s  %-24s  %s",
                               absl::FormatTime("%H:%M:%S", time, absl::LocalTimeZone()),
                               EnumName(v1::CatalogEvent::Kind_Name(event.kind()), ""),
                               event.node_id(), OrDash(event.agent_id()),
                               absl::StrJoin(event.skills(), ","))
            << std::endl;
  }
  return env.Fail(reader->Finish());  // a watch only ends on an error
}

int Drain(const Env& env, const std::string& node, bool undo) {
  v1::DrainRequest request;
  request.set_node_id(node);
  request.set_undo(undo);
  v1::DrainResponse response;
  if (auto done = Fetch(env, &response, [&](auto* context, auto* r) {
        return env.Admin()->Drain(context, request, r);
      })) {
    return *done;
  }
  if (undo) {
    env.out << "node " << response.node_id()
            << " takes client work again and the mesh routes to it\n";
    return kExitOk;
  }
  env.out << "node " << response.node_id()
          << " is draining: it takes no new client work and the mesh routes around it; "
          << response.running_tasks() << " task(s) still running there\n";
  return kExitOk;
}

// ---- approve, deny, audit -------------------------------------------------------

int Decide(const Env& env, const std::string& id, bool approve, const std::string& reason) {
  v1::DecideApprovalRequest request;
  request.set_task_id(id);
  request.set_approve(approve);
  request.set_reason(reason);
  lf::a2a::v1::Task task;
  if (auto done = Fetch(env, &task, [&](auto* context, auto* r) {
        return env.Admin()->DecideApproval(context, request, r);
      })) {
    return *done;
  }
  env.out << "task " << task.id() << " " << (approve ? "approved" : "denied") << ": "
          << StateName(task.status().state()) << "\n";
  return kExitOk;
}

struct AuditFlags {
  std::string principal;
  std::string action;
  std::string decision;
  std::string task;
  int limit = 20;
  bool follow = false;
};

// One audit line as a table row: TIME PRINCIPAL ACTION RESOURCE DECISION RULE TASK.
std::vector<std::string> AuditRow(const std::string& line) {
  google::protobuf::Struct entry;
  if (!google::protobuf::util::JsonStringToMessage(line, &entry).ok()) return {line};
  auto field = [&](const char* key) {
    auto it = entry.fields().find(key);
    return it == entry.fields().end() ? std::string("-") : it->second.string_value();
  };
  std::string principal = field("principal");
  if (field("agent") != "-") principal = absl::StrCat(field("agent"), " for ", principal);
  std::string time = field("time");
  if (time.size() > 19) time = time.substr(0, 19) + "Z";  // to the second
  return {time,          principal,       field("action"), field("resource"), field("decision"),
          field("rule"), field("task_id")};
}

int Audit(const Env& env, const AuditFlags& flags) {
  v1::TailAuditRequest request;
  request.set_principal(flags.principal);
  request.set_action(flags.action);
  request.set_decision(flags.decision);
  request.set_task_id(flags.task);
  request.set_limit(flags.limit);
  bool header = false;
  while (true) {
    v1::TailAuditResponse response;
    std::unique_ptr<grpc::ClientContext> context = env.client.Context(kCallTimeout);
    grpc::Status status = env.Admin()->TailAudit(context.get(), request, &response);
    if (!status.ok()) return env.Fail(status);
    if (env.format == Format::kJsonPath) {
      for (const std::string& line : response.lines()) {
        google::protobuf::Struct entry;
        if (!google::protobuf::util::JsonStringToMessage(line, &entry).ok()) continue;
        env.PrintStreamed(entry);
      }
    } else if (env.structured()) {
      // The log's own lines: one JSON object each, as the file holds them.
      for (const std::string& line : response.lines()) env.out << line << "\n";
    } else {
      Table table({"TIME", "PRINCIPAL", "ACTION", "RESOURCE", "DECISION", "RULE", "TASK"});
      for (const std::string& line : response.lines()) table.AddRow(AuditRow(line));
      // Following: the header once, then only rows.
      table.Print(env.out, env.headers && !header);
      header = true;
    }
    env.out.flush();
    if (!flags.follow) return kExitOk;
    request.set_after_sequence(response.last_sequence());
    request.set_limit(10000);
    absl::SleepFor(absl::Seconds(1));
  }
}

// ---- health, version ---------------------------------------------------------------

int Health(const Env& env, const std::string& service) {
  auto health = grpc::health::v1::Health::NewStub(env.client.channel());
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse check;
  grpc::Status status = health->Check(env.client.Context(kCallTimeout).get(), request, &check);
  if (!status.ok()) return env.Fail(status);
  v1::ListNodesResponse nodes;
  status = env.Admin()->ListNodes(env.client.Context(kCallTimeout).get(), {}, &nodes);
  // Health is public; the mesh's nodes are not: without credentials, the
  // node's own status still answers the question (as a probe would ask it).
  const bool nodes_hidden = status.error_code() == grpc::StatusCode::UNAUTHENTICATED;
  if (!status.ok() && !nodes_hidden) return env.Fail(status);
  if (nodes_hidden) {
    env.err << "meshctl: the mesh's nodes are not shown: " << status.error_message() << "\n";
  }
  const std::string serving =
      grpc::health::v1::HealthCheckResponse::ServingStatus_Name(check.status());
  const bool ok = check.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  if (env.structured()) {
    google::protobuf::Struct document;
    auto& fields = *document.mutable_fields();
    fields["server"].set_string_value(env.client.server());
    fields["status"].set_string_value(serving);
    if (nodes_hidden) {
      const int printed = env.Print(document);
      return ok ? printed : kExitError;
    }
    google::protobuf::ListValue* list = fields["nodes"].mutable_list_value();
    for (const v1::NodeSummary& node : nodes.nodes()) {
      google::protobuf::Value* item = list->add_values();
      if (!google::protobuf::util::JsonStringToMessage(ToJson(node, false), item).ok()) {
        item->set_string_value(node.node_id());
      }
    }
    if (int printed = env.Print(document); printed != kExitOk) return printed;
  } else {
    if (!env.names()) env.out << env.client.server() << ": " << serving << "\n";
    if (nodes_hidden) return ok ? kExitOk : kExitError;
    if (!env.names()) env.out << "\n";
    Table table({"NODE", "STATE", "ADDRESS"});
    for (const v1::NodeSummary& node : nodes.nodes()) {
      table.AddRow({OrDash(node.node_id()),
                    EnumName(v1::NodeState_Name(node.state()), "NODE_STATE_"), node.address()});
    }
    env.PrintTable(table);
  }
  return ok ? kExitOk : kExitError;
}

int Version(const Env& env, bool client_only) {
  google::protobuf::Struct document;
  auto& fields = *document.mutable_fields();
  (*fields["client"].mutable_struct_value()->mutable_fields())["version"].set_string_value(
      a2amesh::Version());
  int code = kExitOk;
  v1::NodeInfo node;
  if (!client_only) {
    grpc::Status status = env.Admin()->GetNode(env.client.Context(kCallTimeout).get(), {}, &node);
    if (status.ok()) {
      auto& server = *fields["server"].mutable_struct_value()->mutable_fields();
      server["version"].set_string_value(node.version());
      server["node"].set_string_value(node.node_id());
      server["address"].set_string_value(env.client.server());
    } else {
      code = env.Fail(status);
    }
  }
  if (env.structured()) {
    if (int printed = env.Print(document); printed != kExitOk) return printed;
  } else {
    env.out << "client: meshctl " << a2amesh::Version() << "\n";
    if (!client_only && code == kExitOk) {
      env.out << "server: meshd " << node.version() << " (node " << node.node_id() << " at "
              << env.client.server() << ")\n";
    }
  }
  return code;
}

// "unknown command" and the nearest verb, as kubectl says it, when the first
// word of the command line (not an option, nor an option's value) names no
// verb; nothing otherwise.
std::optional<std::string> UnknownVerb(CLI::App& app, int argc, const char* const* argv) {
  std::string word;
  for (int i = 1; i < argc && word.empty(); ++i) {
    const std::string arg = argv[i];
    if (!absl::StartsWith(arg, "-")) {
      word = arg;
    } else if (!absl::StrContains(arg, "=")) {
      const CLI::Option* option = app.get_option_no_throw(arg);
      if (option != nullptr && option->get_expected_min() > 0) ++i;  // skip its value
    }
  }
  if (word.empty()) return std::nullopt;
  std::vector<std::string> verbs;
  for (const CLI::App* verb : app.get_subcommands({})) verbs.push_back(verb->get_name());
  if (std::find(verbs.begin(), verbs.end(), word) != verbs.end()) return std::nullopt;
  std::string message = absl::StrCat("error: unknown command \"", word, "\" for \"meshctl\"\n");
  if (std::string near = ClosestMatch(word, verbs); !near.empty()) {
    absl::StrAppend(&message, "\nDid you mean this?\n\t", near, "\n");
  }
  absl::StrAppend(&message, "\nRun 'meshctl --help' for the commands.\n");
  return message;
}

}  // namespace

int Run(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"meshctl: inspect and drive an a2a-mesh through any of its nodes."};
  app.name("meshctl");
  app.require_subcommand(1, 1);
  app.fallthrough();
  app.get_formatter()->column_width(30);
  app.footer(
      Footer("Examples:\n"
             "  meshctl nodes\n"
             "  meshctl agents --skill summarize\n"
             "  meshctl send --skill upper --stream 'hello mesh'\n"
             "  meshctl task a~6f1c...   (a task and its subtasks, across nodes)\n"
             "  meshctl route --skill summarize -o yaml\n"
             "Exit codes: 0 ok, 1 error, 2 usage."));

  ClientOptions client_options;
  std::string output = "table";
  std::string timeout;
  CLI::Option* server_option =
      app.add_option("-s,--server", client_options.server,
                     "Any node of the mesh: host[:port] (port 7400 if none), http://host:port, "
                     "or https://host:port (TLS)")
          ->envname("A2AMESH_SERVER")
          ->capture_default_str();
  app.add_option("-o,--output", output,
                 "Output format: table, wide, json, yaml, name (one name a line), or "
                 "jsonpath=TEMPLATE (e.g. '{range .agents[*]}{.id}{\"\\n\"}{end}')")
      ->capture_default_str();
  bool no_headers = false;
  app.add_flag("--no-headers", no_headers, "Print tables without their header line");
  app.add_option("--timeout", timeout,
                 "Deadline of each call (e.g. 5s, 1m); default 30s, and none for send and watch");
  app.add_flag("--tls", client_options.tls,
               "Connect with TLS (implied by --tls-ca, --tls-cert; the system's CAs otherwise)");
  CLI::Option* tls_ca = app.add_option("--tls-ca,--tls-ca-file", client_options.ca_file,
                                       "PEM CA bundle that signs the node's certificate");
  CLI::Option* tls_cert = app.add_option("--tls-cert,--tls-cert-file", client_options.cert_file,
                                         "PEM client certificate, for mutual TLS (with --tls-key)");
  CLI::Option* tls_key =
      app.add_option("--tls-key,--tls-key-file", client_options.key_file, "PEM key of --tls-cert");
  CLI::Option* token =
      app.add_option("--token", client_options.token, "Bearer token sent with every call")
          ->envname("A2AMESH_TOKEN");
  std::string token_file;
  CLI::Option* token_file_option =
      app.add_option("--token-file", token_file, "Read the bearer token from this file")
          ->envname("A2AMESH_TOKEN_FILE");
  std::string context_name;
  app.add_option("--context", context_name,
                 "Use this context of the config file (default: its current context)")
      ->envname("A2AMESH_CONTEXT");
  std::string config_path = DefaultConfigPath();
  app.add_option("--config", config_path, "meshctl's config file of contexts (env A2AMESH_CONFIG)")
      ->capture_default_str();
  app.set_version_flag("--version", absl::StrCat("meshctl ", a2amesh::Version(), " (revision ",
                                                 a2amesh::Revision(), ")"));

  std::function<int(const Env&)> verb;

  CLI::App* nodes = app.add_subcommand("nodes", "List the nodes of the mesh and their state");
  nodes->footer(Footer("Examples:\n  meshctl nodes\n  meshctl nodes -o wide"));
  nodes->callback([&] { verb = Nodes; });

  AgentsFlags agents_flags;
  CLI::App* agents = app.add_subcommand("agents", "List the agents of the mesh");
  agents->add_option("--skill", agents_flags.skill, "Only agents with this skill");
  agents
      ->add_option("--tag", agents_flags.tags,
                   "Only agents with a skill carrying this tag (repeat: all of them)")
      ->allow_extra_args(false);
  agents->add_option("--node", agents_flags.node, "Only the agents of this node");
  agents->footer(
      Footer("Examples:\n  meshctl agents\n  meshctl agents --skill summarize -o wide\n"
             "  meshctl agents --tag fast --tag en --node node-1 -o json"));
  std::string add_url, add_name, add_node, add_token_file;
  CLI::App* agents_add = agents->add_subcommand(
      "add", "Host an A2A agent by the URL of its card (v1.0 or 0.3): it joins routing");
  agents_add->add_option("url", add_url, "Its card's URL (http:// or https://)")->required();
  agents_add->add_option("--name", add_name, "Its id in the mesh (default: from its card's name)");
  agents_add->add_option("--node", add_node, "The node to host it (default: the one answering)");
  agents_add->add_option("--agent-token-file", add_token_file,
                         "A bearer token for the agent (its card's fetch and every call), read "
                         "here and kept in the node's memory");
  int add_max_concurrency = 0;
  agents_add
      ->add_option("--max-concurrency", add_max_concurrency,
                   "Tasks it runs at once (default: the node's --remote-agent-max-concurrency)")
      ->check(CLI::PositiveNumber);
  agents_add->footer(
      Footer("Examples:\n  meshctl agents add http://10.0.0.5:41241/.well-known/agent-card.json\n"
             "  meshctl agents add https://agents.example.com/.well-known/agent-card.json --name "
             "summarizer --node node-2\n"
             "The node fetches the card at once and refuses (exit 1) one that does not answer or "
             "that it cannot call. Not kept across the node's restarts: meshd --remote-agent is."));
  agents_add->callback([&] {
    verb = [&](const Env& env) {
      return AddRemoteAgent(env, add_url, add_name, add_node, add_token_file, add_max_concurrency);
    };
  });
  std::string remove_which, remove_node;
  CLI::App* agents_remove =
      agents->add_subcommand("remove", "Stop hosting an A2A agent added by URL");
  agents_remove->add_option("agent", remove_which, "Its id on its node, or its card's URL")
      ->required();
  agents_remove->add_option("--node", remove_node,
                            "The node hosting it (default: the one answering)");
  agents_remove->footer(
      Footer("Examples:\n  meshctl agents remove summarizer --node node-2\n"
             "Its running tasks fail; it leaves routing at once."));
  agents_remove->callback([&] {
    verb = [&](const Env& env) { return RemoveRemoteAgent(env, remove_which, remove_node); };
  });
  agents->callback([&] {
    if (agents->get_subcommands().empty()) {
      verb = [&](const Env& env) { return Agents(env, agents_flags); };
    }
  });

  std::string card_id;
  CLI::App* card = app.add_subcommand("card", "Show an agent's A2A card");
  card->add_option("agent", card_id, "agent@node, or an agent id (this node's, else the only one)")
      ->required();
  card->footer(Footer("Examples:\n  meshctl card echo\n  meshctl card echo@node-2 -o json"));
  card->callback([&] { verb = [&](const Env& env) { return Card(env, card_id); }; });

  CLI::App* skills = app.add_subcommand("skills", "List the skills offered in the mesh");
  skills->footer(Footer("Examples:\n  meshctl skills\n  meshctl skills -o wide"));
  skills->callback([&] { verb = Skills; });

  TasksFlags tasks_flags;
  CLI::App* tasks = app.add_subcommand("tasks", "List tasks, newest first, from every node");
  tasks->add_option("--state", tasks_flags.state,
                    "Only tasks in this state (submitted, working, completed, failed, ...)");
  tasks->add_option("--skill", tasks_flags.skill, "Only tasks routed for this skill");
  tasks->add_option("--context", tasks_flags.context, "Only tasks of this context id");
  tasks->add_option("--agent", tasks_flags.agent,
                    "Only tasks of this agent (agent, on any node, or agent@node)");
  tasks->add_option("--limit", tasks_flags.limit, "At most this many (1-1000)")
      ->capture_default_str();
  tasks->add_flag("--local", tasks_flags.local, "Only the tasks of the node that answers");
  tasks->footer(Footer(
      "Examples:\n  meshctl tasks\n  meshctl tasks --state failed --skill summarize -o wide\n"
      "  meshctl tasks --context 5b1f... -o json"));
  tasks->callback([&] { verb = [&](const Env& env) { return Tasks(env, tasks_flags); }; });

  std::string task_id;
  CLI::App* task = app.add_subcommand("task", "Show a task and its subtasks, across nodes");
  task->add_option("id", task_id, "The task id")->required();
  task->footer(
      Footer("Examples:\n  meshctl task a~6f1c2d4e-...\n  meshctl task a~6f1c2d4e-... -o yaml\n"
             "  meshctl task a~6f1c2d4e-... --follow"));
  bool task_follow = false;
  task->add_flag("-f,--follow", task_follow,
                 "Print the task's events as they happen until it ends or waits for input "
                 "(Ctrl-C stops following; the task keeps running)");
  task->callback([&] {
    verb = [&](const Env& env) {
      return task_follow ? Follow(env, task_id) : TaskTree(env, task_id);
    };
  });

  SendFlags send_flags;
  CLI::App* send = app.add_subcommand(
      "send", "Send a task (A2A SendMessage) and print its result, or its events live");
  send->add_option("--skill", send_flags.skill, "Route to an agent with this skill");
  send->add_option("--agent", send_flags.agent, "Route to this agent (agent or agent@node)");
  send->add_option("--tag", send_flags.tags, "Route to a skill carrying this tag (repeatable)")
      ->allow_extra_args(false);
  send->add_option("--data", send_flags.data, "A JSON data part: inline JSON, or @file.json");
  send->add_option("--context", send_flags.context, "Continue this context");
  send->add_option("--task", send_flags.task, "A follow-up message for this task");
  send->add_option("--accept", send_flags.accept, "An accepted output media type (repeatable)")
      ->allow_extra_args(false);
  send->add_flag("--stream", send_flags.stream, "Print each event as it arrives");
  send->add_flag("--no-wait", send_flags.no_wait,
                 "Return once the task is accepted, without waiting for its result");
  send->add_option("text", send_flags.text, "The message text");
  send->footer(
      Footer("Examples:\n  meshctl send --skill upper 'hello mesh'\n"
             "  meshctl send --skill upper --stream 'hello mesh'\n"
             "  meshctl send --agent echo@node-2 --data @request.json\n"
             "  meshctl send --task a~6f1c... 'the missing input'\n"
             "  meshctl send --skill summarize --no-wait 'a long report'; meshctl task <id>\n"
             "A task that ends failed, rejected or canceled exits 1."));
  send->callback([&] { verb = [&](const Env& env) { return Send(env, send_flags); }; });

  std::string cancel_id;
  CLI::App* cancel = app.add_subcommand("cancel", "Cancel a task (and its subtasks)");
  cancel->add_option("id", cancel_id, "The task id")->required();
  cancel->footer(Footer("Examples:\n  meshctl cancel a~6f1c2d4e-..."));
  cancel->callback([&] { verb = [&](const Env& env) { return Cancel(env, cancel_id); }; });

  RouteFlags route_flags;
  CLI::App* route =
      app.add_subcommand("route", "Explain where the node would route a request, and why");
  route->add_option("--skill", route_flags.skill, "The skill asked for");
  route->add_option("--agent", route_flags.agent, "The agent asked for (agent or agent@node)");
  route->add_option("--tag", route_flags.tags, "A tag the skill must carry (repeatable)")
      ->allow_extra_args(false);
  route
      ->add_option("--input", route_flags.input,
                   "Media type of the message's parts (repeatable; default text/plain)")
      ->allow_extra_args(false);
  route->add_option("--accept", route_flags.accept, "An accepted output media type (repeatable)")
      ->allow_extra_args(false);
  route
      ->add_option("--hop", route_flags.hops,
                   "agent@node already in the delegation chain (repeatable, outermost first)")
      ->allow_extra_args(false);
  route->footer(
      Footer("Examples:\n  meshctl route --skill summarize\n"
             "  meshctl --server node-2:7400 route --skill plan --hop planner@node-1 -o wide\n"
             "Exits 1 when nothing in the mesh can take the request."));
  route->callback([&] { verb = [&](const Env& env) { return Route(env, route_flags); }; });

  std::string decide_id;
  std::string decide_reason;
  CLI::App* approve =
      app.add_subcommand("approve", "Approve a task that waits for an approval (AUTH_REQUIRED)");
  approve->add_option("id", decide_id, "The task id")->required();
  approve->add_option("--reason", decide_reason, "Why (kept in the task and the audit log)");
  approve->footer(
      Footer("Examples:\n  meshctl approve n1~6f1c2d4e-...\n"
             "Only the approvers the policy's rule names may (docs/governance.md)."));
  approve->callback(
      [&] { verb = [&](const Env& env) { return Decide(env, decide_id, true, decide_reason); }; });
  CLI::App* deny = app.add_subcommand("deny", "Deny a task that waits for an approval: REJECTED");
  deny->add_option("id", decide_id, "The task id")->required();
  deny->add_option("--reason", decide_reason, "Why (required; the task's status says it)")
      ->required();
  deny->footer(Footer("Examples:\n  meshctl deny n1~6f1c2d4e-... --reason 'over budget'"));
  deny->callback(
      [&] { verb = [&](const Env& env) { return Decide(env, decide_id, false, decide_reason); }; });

  AuditFlags audit_flags;
  CLI::App* audit = app.add_subcommand(
      "audit", "Show the node's newest audit log lines (governance decisions), oldest first");
  audit->add_option("--principal", audit_flags.principal, "Only this principal's");
  audit->add_option("--action", audit_flags.action, "Only this action (send, get, approve, ...)");
  audit->add_option("--decision", audit_flags.decision, "Only this decision (allow, deny, ...)");
  audit->add_option("--task", audit_flags.task, "Only about this task id");
  audit->add_option("-n,--limit", audit_flags.limit, "How many lines (at most 10000)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  audit->add_flag("-f,--follow", audit_flags.follow, "Keep printing new lines as they come");
  audit->footer(
      Footer("Examples:\n  meshctl audit --decision deny\n"
             "  meshctl audit --principal alice -f\n"
             "  meshctl audit -o json | jq .rule\n"
             "The node keeps its last 10,000 lines in memory (--audit-log for the file)."));
  audit->callback([&] { verb = [&](const Env& env) { return Audit(env, audit_flags); }; });

  CLI::App* watch = app.add_subcommand(
      "watch", "Print the catalog, then every change as it happens (until interrupted)");
  watch->footer(Footer("Examples:\n  meshctl watch\n  meshctl watch -o json | jq ."));
  watch->callback([&] { verb = Watch; });

  std::string drain_node;
  CLI::App* drain =
      app.add_subcommand("drain", "Stop a node taking new client work; its running tasks finish");
  drain->add_option("node", drain_node, "The node id")->required();
  bool drain_undo = false;
  drain->add_flag("--undo", drain_undo,
                  "Put the drained node back into routing (not one stopping on SIGTERM)");
  drain->footer(Footer("Examples:\n  meshctl drain node-2\n  meshctl drain node-2 --undo"));
  drain->callback(
      [&] { verb = [&](const Env& env) { return Drain(env, drain_node, drain_undo); }; });

  std::string health_service;
  CLI::App* health = app.add_subcommand(
      "health", "Check the node's gRPC health (exit 1 unless SERVING) and the mesh's nodes");
  health->add_option("--service", health_service,
                     "The health service: default the node's readiness (NOT_SERVING while "
                     "draining); liveness stays SERVING through a drain");
  health->footer(
      Footer("Examples:\n  meshctl health\n  meshctl --server node-2:7400 health -o json\n"
             "  meshctl health --service liveness"));
  health->callback([&] { verb = [&](const Env& env) { return Health(env, health_service); }; });

  bool client_only = false;
  CLI::App* version = app.add_subcommand("version", "Print meshctl's version and the node's");
  version->add_flag("--client", client_only, "Only meshctl's version");
  version->footer(Footer("Examples:\n  meshctl version\n  meshctl version -o json"));
  version->callback([&] { verb = [&](const Env& env) { return Version(env, client_only); }; });

  std::string shell;
  CLI::App* config = app.add_subcommand(
      "config", "Manage contexts: named nodes and credentials, like kubeconfig's");
  config->require_subcommand(1, 1);
  std::string config_context;
  Context context_settings;
  CLI::App* use_context = config->add_subcommand("use-context", "Make a context the current one");
  use_context->add_option("name", config_context, "The context")->required();
  CLI::App* get_contexts = config->add_subcommand("get-contexts", "List the contexts");
  CLI::App* current_context =
      config->add_subcommand("current-context", "Print the current context's name");
  CLI::App* set_context =
      config->add_subcommand("set-context", "Create or change a context (only the flags given)");
  set_context->add_option("name", config_context, "The context")->required();
  CLI::Option* set_server =
      set_context->add_option("--server", context_settings.server, "host:port of a node");
  CLI::Option* set_tls = set_context->add_flag("--tls", context_settings.tls, "Connect with TLS");
  CLI::Option* set_ca = set_context->add_option("--tls-ca", context_settings.tls_ca, "PEM CA");
  CLI::Option* set_cert =
      set_context->add_option("--tls-cert", context_settings.tls_cert, "PEM client certificate");
  CLI::Option* set_key = set_context->add_option("--tls-key", context_settings.tls_key, "PEM key");
  CLI::Option* set_token_file = set_context->add_option("--token-file", context_settings.token_file,
                                                        "File with the bearer token");
  CLI::App* delete_context = config->add_subcommand("delete-context", "Remove a context");
  delete_context->add_option("name", config_context, "The context")->required();
  config->footer(
      Footer("Examples:\n"
             "  meshctl config set-context prod --server mesh.example.com:7400 \\\n"
             "      --tls-ca ca.pem --token-file ~/.a2a-mesh-token\n"
             "  meshctl config use-context prod\n"
             "  meshctl --context staging nodes"));

  CLI::App* completion = app.add_subcommand("completion", "Print a shell completion script");
  completion->add_option("shell", shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  completion->footer(
      Footer("Examples:\n  source <(meshctl completion bash)\n"
             "  meshctl completion zsh > \"${fpath[1]}/_meshctl\""));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (std::optional<std::string> unknown = UnknownVerb(app, argc, argv)) {
      err << *unknown;
      return kExitUsage;
    }
    std::ostringstream help_out;
    std::ostringstream help_err;
    int code = app.exit(e, help_out, help_err);
    out << help_out.str();
    err << help_err.str();
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (app.got_subcommand(completion)) {
    out << CompletionScript(shell.c_str());
    return kExitOk;
  }
  absl::StatusOr<Config> loaded = LoadConfig(config_path);
  if (!loaded.ok()) {
    err << "error: " << loaded.status().message() << "\n";
    return kExitUsage;
  }
  if (app.got_subcommand(config)) {
    Config& file = *loaded;
    if (config->got_subcommand(get_contexts)) {
      size_t width = 4;
      for (const auto& [name, ctx] : file.contexts) width = std::max(width, name.size());
      out << absl::StrFormat("%-8s %-*s  %s\n", "CURRENT", width, "NAME", "SERVER");
      for (const auto& [name, ctx] : file.contexts) {
        out << absl::StrFormat("%-8s %-*s  %s\n", name == file.current_context ? "*" : "", width,
                               name, ctx.server);
      }
      return kExitOk;
    }
    if (config->got_subcommand(current_context)) {
      if (file.current_context.empty()) {
        err << "error: no current context in " << config_path << "\n";
        return kExitError;
      }
      out << file.current_context << "\n";
      return kExitOk;
    }
    if (config->got_subcommand(set_context)) {
      Context& ctx = file.contexts[config_context];
      if (set_server->count() > 0) ctx.server = context_settings.server;
      if (set_tls->count() > 0) ctx.tls = context_settings.tls;
      if (set_ca->count() > 0) ctx.tls_ca = context_settings.tls_ca;
      if (set_cert->count() > 0) ctx.tls_cert = context_settings.tls_cert;
      if (set_key->count() > 0) ctx.tls_key = context_settings.tls_key;
      if (set_token_file->count() > 0) ctx.token_file = context_settings.token_file;
      if (file.current_context.empty()) file.current_context = config_context;
    } else if (file.contexts.count(config_context) == 0) {
      err << "error: no context '" << config_context << "' in " << config_path << "\n";
      return kExitError;
    } else if (config->got_subcommand(use_context)) {
      file.current_context = config_context;
    } else {  // delete-context
      file.contexts.erase(config_context);
      if (file.current_context == config_context) file.current_context.clear();
    }
    if (absl::Status saved = SaveConfig(config_path, file); !saved.ok()) {
      err << "error: " << saved.message() << "\n";
      return kExitError;
    }
    return kExitOk;
  }
  // A context fills what the command line and the environment leave unset.
  const std::string chosen = context_name.empty() ? loaded->current_context : context_name;
  if (!chosen.empty()) {
    auto it = loaded->contexts.find(chosen);
    if (it == loaded->contexts.end()) {
      err << "error: --context: no context '" << chosen << "' in " << config_path << "\n";
      return kExitUsage;
    }
    const Context& ctx = it->second;
    if (server_option->count() == 0 && !ctx.server.empty()) client_options.server = ctx.server;
    if (ctx.tls) client_options.tls = true;
    if (tls_ca->count() == 0) client_options.ca_file = ctx.tls_ca;
    if (tls_cert->count() == 0) client_options.cert_file = ctx.tls_cert;
    if (tls_key->count() == 0) client_options.key_file = ctx.tls_key;
    if (token->count() == 0 && token_file_option->count() == 0) {
      client_options.token = ctx.token;
      token_file = ctx.token_file;
    }
  }
  if (!token_file.empty() && client_options.token.empty()) {
    std::ifstream in(token_file);
    std::stringstream text;
    text << in.rdbuf();
    client_options.token = std::string(absl::StripAsciiWhitespace(text.str()));
    if (!in || client_options.token.empty()) {
      err << "error: --token-file: cannot read a token from " << token_file << "\n";
      return kExitUsage;
    }
  }
  absl::StatusOr<OutputFormat> format = ParseFormat(output);
  if (!format.ok()) {
    err << "error: " << format.status().message() << "\n";
    return kExitUsage;
  }
  if (!timeout.empty()) {
    absl::Duration d;
    if (!absl::ParseDuration(timeout, &d) || d <= absl::ZeroDuration()) {
      err << "error: --timeout: '" << timeout << "' is not a duration such as 500ms, 10s or 2m\n";
      return kExitUsage;
    }
    client_options.timeout = d;
  }
  if (client_options.cert_file.empty() != client_options.key_file.empty()) {
    err << "error: --tls-cert and --tls-key go together\n";
    return kExitUsage;
  }
  absl::StatusOr<std::string> target = NodeTarget(client_options.server, &client_options.tls);
  if (!target.ok()) {
    err << "error: " << target.status().message() << "\n";
    return kExitUsage;
  }
  client_options.server = *target;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(client_options);
  if (!client.ok()) {
    err << "error: " << client.status().message() << "\n";
    return kExitError;
  }
  const JsonPathTemplate* jsonpath = format->jsonpath ? &*format->jsonpath : nullptr;
  return verb(Env{**client, format->format, out, err, jsonpath, !no_headers});
}

}  // namespace a2amesh::meshctl
