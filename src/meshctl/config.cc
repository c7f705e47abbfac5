#include "meshctl/config.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "rapidjson/document.h"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"

namespace a2amesh::meshctl {
namespace {

// The fields of a context, by their name in the file.
struct Field {
  const char* name;
  std::string Context::*text;
};
constexpr Field kFields[] = {
    {"server", &Context::server},     {"tls-ca", &Context::tls_ca},
    {"tls-cert", &Context::tls_cert}, {"tls-key", &Context::tls_key},
    {"token", &Context::token},       {"token-file", &Context::token_file}};

}  // namespace

std::string DefaultConfigPath() {
  if (const char* path = std::getenv("A2AMESH_CONFIG"); path != nullptr && *path != '\0') {
    return path;
  }
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && *xdg != '\0') {
    return absl::StrCat(xdg, "/a2a-mesh/config.json");
  }
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr ? home : ".", "/.config/a2a-mesh/config.json");
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  Config config;
  std::ifstream in(path);
  if (!in) return config;
  std::ostringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(text.str().c_str());
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("config file ", path, ": ", what));
  };
  if (doc.HasParseError() || !doc.IsObject()) return bad("not a JSON object");
  if (doc.HasMember("current-context")) {
    if (!doc["current-context"].IsString()) return bad("current-context is not a string");
    config.current_context = doc["current-context"].GetString();
  }
  if (!doc.HasMember("contexts")) return config;
  if (!doc["contexts"].IsObject()) return bad("contexts is not an object");
  for (const auto& member : doc["contexts"].GetObject()) {
    const std::string name = member.name.GetString();
    if (!member.value.IsObject()) return bad(absl::StrCat("context ", name, " is not an object"));
    Context context;
    for (const auto& field : member.value.GetObject()) {
      const std::string key = field.name.GetString();
      if (key == "tls") {
        if (!field.value.IsBool())
          return bad(absl::StrCat("context ", name, ": tls is not a bool"));
        context.tls = field.value.GetBool();
        continue;
      }
      const Field* known = nullptr;
      for (const Field& f : kFields) {
        if (key == f.name) known = &f;
      }
      if (known == nullptr) {
        return bad(absl::StrCat("context ", name, ": unknown key '", key, "'"));
      }
      if (!field.value.IsString()) {
        return bad(absl::StrCat("context ", name, ": ", key, " is not a string"));
      }
      context.*(known->text) = field.value.GetString();
    }
    config.contexts[name] = std::move(context);
  }
  return config;
}

absl::Status SaveConfig(const std::string& path, const Config& config) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("current-context");
  writer.String(config.current_context.c_str());
  writer.Key("contexts");
  writer.StartObject();
  for (const auto& [name, context] : config.contexts) {
    writer.Key(name.c_str());
    writer.StartObject();
    for (const Field& f : kFields) {
      if ((context.*(f.text)).empty()) continue;
      writer.Key(f.name);
      writer.String((context.*(f.text)).c_str());
    }
    if (context.tls) {
      writer.Key("tls");
      writer.Bool(true);
    }
    writer.EndObject();
  }
  writer.EndObject();
  writer.EndObject();
  std::error_code error;
  std::filesystem::path file(path);
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), error);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << buffer.GetString() << "\n";
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write config file ", tmp));
  }
  chmod(tmp.c_str(), 0600);
  std::filesystem::rename(tmp, path, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot write config file ", path, ": ", error.message()));
  }
  return absl::OkStatus();
}

}  // namespace a2amesh::meshctl
