#include "a2a/agent_cards.h"

#include <algorithm>
#include <cstdint>

#include "a2a/http_framing.h"
#include "a2a/proto_json.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace a2amesh::a2a {

namespace {

// An HTTP-date (RFC 9110 §5.6.7, IMF-fixdate).
constexpr char kHttpDate[] = "%a, %d %b %Y %H:%M:%S GMT";

// FNV-1a: a stable content hash for ETags.
uint64_t Fnv1a(absl::string_view data) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : data) {
    hash = (hash ^ c) * 1099511628211ull;
  }
  return hash;
}

}  // namespace

std::vector<lf::a2a::v1::AgentInterface> AgentCards::Interfaces(const http::Request& request,
                                                                const std::string& tenant) const {
  const std::string* host_header = request.Header("host");
  const std::string host =
      host_header != nullptr && !host_header->empty() ? *host_header : "localhost";
  std::string base = options_.public_http_url;
  if (base.empty()) {
    base = absl::StrCat(options_.tls ? "https://" : "http://", host);
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string grpc_url = options_.public_grpc_url;
  if (grpc_url.empty()) {
    std::string name = host.substr(0, host.front() == '[' ? host.find(']') + 1 : host.find(':'));
    grpc_url = absl::StrCat(name, ":", options_.grpc_port);
  }
  std::vector<lf::a2a::v1::AgentInterface> interfaces(3);
  interfaces[0].set_url(base + kJsonRpcPath);
  interfaces[0].set_protocol_binding("JSONRPC");
  interfaces[1].set_url(base + kRestPath);
  interfaces[1].set_protocol_binding("HTTP+JSON");
  interfaces[2].set_url(grpc_url);
  interfaces[2].set_protocol_binding("GRPC");
  for (auto& interface : interfaces) {
    interface.set_tenant(tenant);
    interface.set_protocol_version("1.0");
  }
  return interfaces;
}

lf::a2a::v1::AgentCard AgentCards::MeshCard(const http::Request& request) const {
  lf::a2a::v1::AgentCard card;
  card.set_name(absl::StrCat("a2a-mesh node ", options_.node_id));
  card.set_description(
      "An a2a-mesh node: it routes each task to an agent of the mesh that declared the skill "
      "the task needs (metadata \"a2amesh/skill\"), or to the agent named by the tenant.");
  card.set_version(options_.version);
  card.mutable_capabilities()->set_streaming(true);
  card.mutable_capabilities()->set_push_notifications(options_.push_notifications);
  DeclareSecurity(&card);
  absl::flat_hash_map<std::string, lf::a2a::v1::AgentSkill*> skills;
  std::vector<std::string> input_modes;
  std::vector<std::string> output_modes;
  auto add_modes = [](std::vector<std::string>& modes, const auto& more) {
    for (const std::string& mode : more) {
      if (std::find(modes.begin(), modes.end(), mode) == modes.end()) modes.push_back(mode);
    }
  };
  for (const auto& [tenant, agent] : cards_.Agents()) {
    add_modes(input_modes, agent.default_input_modes());
    add_modes(output_modes, agent.default_output_modes());
    for (const lf::a2a::v1::AgentSkill& skill : agent.skills()) {
      auto [it, added] = skills.try_emplace(skill.id(), nullptr);
      if (added) {
        it->second = card.add_skills();
        *it->second = skill;
        continue;
      }
      std::vector<std::string> tags(it->second->tags().begin(), it->second->tags().end());
      add_modes(tags, skill.tags());
      it->second->clear_tags();
      for (const std::string& tag : tags) it->second->add_tags(tag);
    }
  }
  std::sort(card.mutable_skills()->begin(), card.mutable_skills()->end(),
            [](const auto& a, const auto& b) { return a.id() < b.id(); });
  if (input_modes.empty()) input_modes.push_back("text/plain");
  if (output_modes.empty()) output_modes.push_back("text/plain");
  for (const std::string& mode : input_modes) card.add_default_input_modes(mode);
  for (const std::string& mode : output_modes) card.add_default_output_modes(mode);
  for (auto& interface : Interfaces(request, "")) {
    *card.add_supported_interfaces() = std::move(interface);
  }
  return card;
}

void AgentCards::DeclareSecurity(lf::a2a::v1::AgentCard* card) const {
  const AgentCardOptions::Security& security = options_.security;
  card->mutable_capabilities()->set_extended_agent_card(security.enabled());
  card->clear_security_schemes();
  card->clear_security_requirements();
  auto require = [card](const std::string& name) {
    // Requirements are alternatives: any one scheme will do.
    (*card->add_security_requirements()->mutable_schemes())[name];
  };
  auto& schemes = *card->mutable_security_schemes();
  if (security.bearer) {
    auto* bearer = schemes["bearer"].mutable_http_auth_security_scheme();
    bearer->set_scheme("Bearer");
    if (security.jwt) bearer->set_bearer_format("JWT");
    bearer->set_description("A bearer token in the Authorization header (gRPC: metadata)");
    require("bearer");
  }
  if (!security.oidc_issuer.empty()) {
    std::string issuer = security.oidc_issuer;
    while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
    auto* oidc = schemes["oidc"].mutable_open_id_connect_security_scheme();
    oidc->set_open_id_connect_url(absl::StrCat(issuer, "/.well-known/openid-configuration"));
    oidc->set_description("An ID or access token of this issuer, as a bearer token");
    require("oidc");
  }
  if (security.mtls) {
    schemes["mtls"].mutable_mtls_security_scheme()->set_description(
        "A client certificate of the mesh's client CA");
    require("mtls");
  }
}

absl::StatusOr<lf::a2a::v1::AgentCard> AgentCards::ExtendedCard(const std::string& host,
                                                                const std::string& tenant) const {
  http::Request request;
  request.headers.emplace_back("host", host);
  return CardFor(request, tenant);
}

absl::StatusOr<lf::a2a::v1::AgentCard> AgentCards::CardFor(const http::Request& request,
                                                           const std::string& tenant) const {
  if (tenant.empty()) return MeshCard(request);
  std::optional<lf::a2a::v1::AgentCard> found = cards_.Find(tenant);
  if (!found.has_value()) {
    return absl::NotFoundError(absl::StrCat("no agent '", tenant, "' is registered in the mesh"));
  }
  lf::a2a::v1::AgentCard card = *std::move(found);
  card.clear_supported_interfaces();
  for (auto& interface : Interfaces(request, tenant)) {
    *card.add_supported_interfaces() = std::move(interface);
  }
  // Whatever the agent declared, the node streams, (if enabled) pushes, and
  // authenticates its callers as it is configured to.
  card.mutable_capabilities()->set_streaming(true);
  card.mutable_capabilities()->set_push_notifications(options_.push_notifications);
  DeclareSecurity(&card);
  return card;
}

http::Response AgentCards::Serve(const http::Request& request, const std::string& tenant) const {
  if (request.method != "GET" && request.method != "HEAD") {
    http::Response response = RestError(absl::UnimplementedError(absl::StrCat(
                                            "agent cards are read with GET, not ", request.method)),
                                        405);
    response.headers.emplace_back("Allow", "GET, HEAD");
    return response;
  }
  absl::StatusOr<lf::a2a::v1::AgentCard> card = CardFor(request, tenant);
  if (!card.ok()) return RestError(card.status());
  http::Response response = JsonResponse(200, kJsonType, ResultJson(*card));
  const std::string etag =
      absl::StrCat("W/\"", absl::Hex(Fnv1a(response.body), absl::kZeroPad16), "\"");
  const absl::Time modified = FirstServed(etag);
  response.headers = {
      {"ETag", etag},
      {"Last-Modified", absl::FormatTime(kHttpDate, modified, absl::UTCTimeZone())},
      {"Cache-Control", absl::StrCat("public, max-age=", absl::ToInt64Seconds(options_.max_age))}};
  bool not_modified = false;
  if (const std::string* match = request.Header("if-none-match")) {
    for (absl::string_view candidate : absl::StrSplit(*match, ',')) {
      candidate = absl::StripAsciiWhitespace(candidate);
      if (candidate == "*" || candidate == etag || absl::StrCat("W/", candidate) == etag) {
        not_modified = true;
        break;
      }
    }
  } else if (const std::string* since = request.Header("if-modified-since")) {
    // RFC 9110 §13.1.3: only without If-None-Match; a date that does not
    // parse is ignored.
    absl::Time time;
    std::string error;
    not_modified =
        absl::ParseTime(kHttpDate, *since, absl::UTCTimeZone(), &time, &error) && modified <= time;
  }
  if (not_modified) {
    response.status = 304;
    response.body.clear();
  }
  return response;
}

absl::Time AgentCards::FirstServed(const std::string& etag) const {
  absl::MutexLock lock(&mu_);
  auto it = first_served_.find(etag);
  if (it != first_served_.end()) return it->second;
  if (first_served_.size() >= kMaxRemembered) first_served_.clear();
  const absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  first_served_.emplace(etag, now);
  return now;
}

}  // namespace a2amesh::a2a
