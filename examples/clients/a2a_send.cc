// a2a-send: a minimal A2A v1.0 gRPC client in C++. Sends one message to a node
// (blocking, or --stream to print every event as it arrives) and prints the
// task. An example of using proto/lf/a2a/v1/a2a.proto from C++; meshctl is the
// full tool.
//
//   a2a-send --node 127.0.0.1:7400 --skill uppercase --stream "make this loud"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/command_line.h"
#include "core/ids.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "security/tls.h"

namespace {

std::string Json(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

std::string Describe(const lf::a2a::v1::StreamResponse& event) {
  switch (event.payload_case()) {
    case lf::a2a::v1::StreamResponse::kTask:
      return absl::StrCat("task     ", event.task().id(), " ",
                          lf::a2a::v1::TaskState_Name(event.task().status().state()));
    case lf::a2a::v1::StreamResponse::kStatusUpdate: {
      const auto& status = event.status_update().status();
      std::string text;
      for (const auto& part : status.message().parts()) text += part.text();
      return absl::StrCat("status   ", lf::a2a::v1::TaskState_Name(status.state()),
                          text.empty() ? "" : "  \"" + text + "\"");
    }
    case lf::a2a::v1::StreamResponse::kArtifactUpdate: {
      const auto& update = event.artifact_update();
      std::string parts;
      for (const auto& part : update.artifact().parts()) {
        parts += part.has_text() ? part.text() : Json(part);
      }
      return absl::StrCat("artifact ", update.artifact().artifact_id(),
                          update.append() ? " +" : "  ", "\"", parts, "\"",
                          update.last_chunk() ? "  (last chunk)" : "");
    }
    case lf::a2a::v1::StreamResponse::kMessage:
      return absl::StrCat("message  ", Json(event.message()));
    default:
      return "(empty event)";
  }
}

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout, const std::string& token) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->AddMetadata("a2a-version", "1.0");
  if (!token.empty()) context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  return context;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"a2a-send: send one A2A message to a node over gRPC and print the result"};
  std::string node = "127.0.0.1:7400";
  std::string skill;
  std::string agent;
  bool stream = false;
  std::string text;
  std::string retry_text = "0s";
  app.add_option("--node", node, "The node's gRPC address")->capture_default_str();
  app.add_option("--skill", skill, "Route to an agent with this skill (metadata a2amesh/skill)");
  app.add_option("--agent", agent, "Route to this agent id (the A2A tenant)");
  app.add_flag("--stream", stream, "Stream the task's events as they arrive");
  app.add_option("--retry-for", retry_text,
                 "Retry while no agent can take the message yet, up to this long")
      ->capture_default_str();
  std::string token;
  app.add_option("--token", token, "Bearer token for a node with auth on (env A2AMESH_TOKEN)")
      ->envname("A2AMESH_TOKEN");
  a2amesh::security::ClientTlsOptions tls;
  app.add_flag("--tls", tls.enabled, "Dial the node with TLS (the system's CAs unless --tls-ca)");
  app.add_option("--tls-ca", tls.ca_file, "PEM CA the node's certificate must chain to");
  app.add_option("--tls-cert", tls.cert_file, "Client certificate (PEM) for mutual TLS");
  app.add_option("--tls-key", tls.key_file, "Private key (PEM) of --tls-cert");
  app.add_option("text", text, "The message text")->required();
  if (auto exit = a2amesh::examples::ParseCommandLine(app, argc, argv)) return *exit;
  tls.enabled = tls.enabled || !tls.ca_file.empty() || !tls.cert_file.empty();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      a2amesh::security::ClientCredentials(tls);
  if (!credentials.ok()) {
    std::fprintf(stderr, "a2a-send: %s\n", std::string(credentials.status().message()).c_str());
    return 2;
  }
  absl::Duration retry_for;
  if (!absl::ParseDuration(retry_text, &retry_for)) {
    std::fprintf(stderr, "a2a-send: --retry-for: '%s' is not a duration\n", retry_text.c_str());
    return 2;
  }

  auto stub = lf::a2a::v1::A2AService::NewStub(grpc::CreateChannel(node, *credentials));
  lf::a2a::v1::SendMessageRequest request;
  request.set_tenant(agent);
  auto* message = request.mutable_message();
  message->set_message_id(a2amesh::NewUuid());
  message->set_role(lf::a2a::v1::ROLE_USER);
  auto* part = message->add_parts();
  part->set_text(text);
  part->set_media_type("text/plain");
  if (!skill.empty()) {
    (*request.mutable_metadata()->mutable_fields())["a2amesh/skill"].set_string_value(skill);
  }

  absl::Time give_up = absl::Now() + retry_for;
  while (true) {
    grpc::Status status;
    if (stream) {
      auto context = Context(absl::Minutes(10), token);
      auto reader = stub->SendStreamingMessage(context.get(), request);
      lf::a2a::v1::StreamResponse event;
      while (reader->Read(&event)) {
        std::cout << Describe(event) << std::endl;
      }
      status = reader->Finish();
    } else {
      lf::a2a::v1::SendMessageResponse response;
      status = stub->SendMessage(Context(absl::Minutes(10), token).get(), request, &response);
      if (status.ok()) {
        std::cout << Json(response) << std::endl;
      }
    }
    if (status.ok()) {
      return 0;
    }
    bool not_yet = status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
                   status.error_code() == grpc::StatusCode::UNAVAILABLE;
    if (!not_yet || absl::Now() >= give_up) {
      std::cerr << "a2a-send: " << status.error_code() << " " << status.error_message()
                << std::endl;
      return 1;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}
