#include "http/tls_context.h"

#include <openssl/ssl.h>

#include "absl/strings/str_cat.h"
#include "boost/asio/ssl/context.hpp"
#include "core/file_stamp.h"
#include "core/log.h"

namespace a2amesh::http {
namespace {

namespace ssl = boost::asio::ssl;

}  // namespace

absl::StatusOr<std::shared_ptr<TlsContextSource>> TlsContextSource::Create(TlsFiles files) {
  std::shared_ptr<TlsContextSource> source(new TlsContextSource(std::move(files)));
  Stamp stamp = source->Look();
  absl::StatusOr<std::shared_ptr<ssl::context>> context = source->Load();
  if (!context.ok()) return context.status();
  absl::MutexLock lock(&source->mu_);
  source->current_ = *std::move(context);
  source->loaded_ = stamp;
  source->next_look_ = absl::Now() + source->files_.reload_interval;
  return source;
}

TlsContextSource::Stamp TlsContextSource::Look() const {
  return Stamp{FileStamp(files_.cert_file), FileStamp(files_.key_file),
               FileStamp(files_.client_ca_file)};
}

absl::StatusOr<std::shared_ptr<ssl::context>> TlsContextSource::Load() const {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  boost::system::error_code ec;
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                           ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                           ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                       ec);
  context->use_certificate_chain_file(files_.cert_file, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS certificate ", files_.cert_file, ": ", ec.message()));
  }
  context->use_private_key_file(files_.key_file, ssl::context::pem, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS key ", files_.key_file, ": ", ec.message()));
  }
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS key ", files_.key_file, " is not the key of ", files_.cert_file));
  }
  if (!files_.client_ca_file.empty()) {
    context->load_verify_file(files_.client_ca_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS client CA ", files_.client_ca_file, ": ", ec.message()));
    }
    // Requested, not required: a client may prove itself otherwise (a token).
    context->set_verify_mode(ssl::verify_peer, ec);
    // Sessions (and TLS 1.3 tickets) of a server that verifies clients need
    // a context id; without one OpenSSL fails the handshake ("internal error").
    static constexpr unsigned char kSessionContext[] = "a2a-mesh";
    SSL_CTX_set_session_id_context(context->native_handle(), kSessionContext,
                                   sizeof(kSessionContext) - 1);
  }
  return context;
}

std::shared_ptr<ssl::context> TlsContextSource::Current() {
  {
    absl::MutexLock lock(&mu_);
    absl::Time now = absl::Now();
    if (now < next_look_) return current_;
    next_look_ = now + files_.reload_interval;
  }
  // Loading reads files: outside the lock (another connection meanwhile gets
  // the context in use).
  Stamp stamp = Look();
  {
    absl::MutexLock lock(&mu_);
    if (stamp == loaded_) return current_;
  }
  absl::StatusOr<std::shared_ptr<ssl::context>> context = Load();
  absl::MutexLock lock(&mu_);
  if (!context.ok()) {
    A2AMESH_LOG(Warning, "TLS files changed but do not load; serving the previous ones")
        .With("error", context.status().message());
    loaded_ = stamp;  // tried; look again when they change next
    return current_;
  }
  A2AMESH_LOG(Info, "TLS certificate reloaded").With("file", files_.cert_file);
  current_ = *std::move(context);
  loaded_ = stamp;
  return current_;
}

}  // namespace a2amesh::http
