#include "catalog/card_validation.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/a2a_error.h"
#include "core/status_macros.h"

namespace a2amesh::catalog {
namespace {

using lf::a2a::v1::AgentCard;
using lf::a2a::v1::SecurityScheme;

absl::Status Required(bool present, absl::string_view field) {
  return present ? absl::OkStatus() : InvalidFieldError(field, "is required");
}

absl::Status NonEmpty(int size, absl::string_view field) {
  return size > 0 ? absl::OkStatus() : InvalidFieldError(field, "needs at least one entry");
}

absl::Status ValidateScheme(const SecurityScheme& scheme, const std::string& field) {
  switch (scheme.scheme_case()) {
    case SecurityScheme::kApiKeySecurityScheme:
      A2AMESH_RETURN_IF_ERROR(Required(!scheme.api_key_security_scheme().location().empty(),
                                       field + ".apiKeySecurityScheme.location"));
      return Required(!scheme.api_key_security_scheme().name().empty(),
                      field + ".apiKeySecurityScheme.name");
    case SecurityScheme::kHttpAuthSecurityScheme:
      return Required(!scheme.http_auth_security_scheme().scheme().empty(),
                      field + ".httpAuthSecurityScheme.scheme");
    case SecurityScheme::kOauth2SecurityScheme:
      return Required(scheme.oauth2_security_scheme().has_flows(),
                      field + ".oauth2SecurityScheme.flows");
    case SecurityScheme::kOpenIdConnectSecurityScheme:
      return Required(!scheme.open_id_connect_security_scheme().open_id_connect_url().empty(),
                      field + ".openIdConnectSecurityScheme.openIdConnectUrl");
    case SecurityScheme::kMtlsSecurityScheme:
      return absl::OkStatus();
    case SecurityScheme::SCHEME_NOT_SET:
      break;
  }
  return InvalidFieldError(field, "names no security scheme");
}

}  // namespace

absl::Status ValidateAgentCard(const AgentCard& card, absl::string_view field) {
  const std::string f(field);
  A2AMESH_RETURN_IF_ERROR(Required(!card.name().empty(), f + ".name"));
  A2AMESH_RETURN_IF_ERROR(Required(!card.description().empty(), f + ".description"));
  A2AMESH_RETURN_IF_ERROR(Required(!card.version().empty(), f + ".version"));
  A2AMESH_RETURN_IF_ERROR(Required(card.has_capabilities(), f + ".capabilities"));
  A2AMESH_RETURN_IF_ERROR(NonEmpty(card.default_input_modes_size(), f + ".default_input_modes"));
  A2AMESH_RETURN_IF_ERROR(NonEmpty(card.default_output_modes_size(), f + ".default_output_modes"));
  if (card.has_provider()) {
    A2AMESH_RETURN_IF_ERROR(Required(!card.provider().url().empty(), f + ".provider.url"));
    A2AMESH_RETURN_IF_ERROR(
        Required(!card.provider().organization().empty(), f + ".provider.organization"));
  }
  A2AMESH_RETURN_IF_ERROR(NonEmpty(card.skills_size(), f + ".skills"));
  absl::flat_hash_set<std::string> skill_ids;
  for (int i = 0; i < card.skills_size(); ++i) {
    const auto& skill = card.skills(i);
    std::string sf = absl::StrCat(f, ".skills[", i, "]");
    A2AMESH_RETURN_IF_ERROR(Required(!skill.id().empty(), sf + ".id"));
    A2AMESH_RETURN_IF_ERROR(Required(!skill.name().empty(), sf + ".name"));
    A2AMESH_RETURN_IF_ERROR(Required(!skill.description().empty(), sf + ".description"));
    A2AMESH_RETURN_IF_ERROR(NonEmpty(skill.tags_size(), sf + ".tags"));
    if (!skill_ids.insert(skill.id()).second) {
      return InvalidFieldError(sf + ".id",
                               absl::StrCat("'", skill.id(), "' is used by an earlier skill"));
    }
  }
  for (int i = 0; i < card.supported_interfaces_size(); ++i) {
    const auto& iface = card.supported_interfaces(i);
    std::string inf = absl::StrCat(f, ".supported_interfaces[", i, "]");
    A2AMESH_RETURN_IF_ERROR(Required(!iface.url().empty(), inf + ".url"));
    A2AMESH_RETURN_IF_ERROR(Required(!iface.protocol_binding().empty(), inf + ".protocol_binding"));
    A2AMESH_RETURN_IF_ERROR(Required(!iface.protocol_version().empty(), inf + ".protocol_version"));
  }
  for (const auto& [name, scheme] : card.security_schemes()) {
    A2AMESH_RETURN_IF_ERROR(
        ValidateScheme(scheme, absl::StrCat(f, ".security_schemes[", name, "]")));
  }
  for (int i = 0; i < card.signatures_size(); ++i) {
    std::string sf = absl::StrCat(f, ".signatures[", i, "]");
    A2AMESH_RETURN_IF_ERROR(Required(!card.signatures(i).protected_().empty(), sf + ".protected"));
    A2AMESH_RETURN_IF_ERROR(Required(!card.signatures(i).signature().empty(), sf + ".signature"));
  }
  return absl::OkStatus();
}

bool DeclaresExtension(const lf::a2a::v1::AgentCard& card, absl::string_view uri) {
  for (const auto& extension : card.capabilities().extensions()) {
    if (extension.uri() == uri) return true;
  }
  return false;
}

}  // namespace a2amesh::catalog
