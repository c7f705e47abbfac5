#ifndef A2AMESH_HTTP_TLS_CONTEXT_H_
#define A2AMESH_HTTP_TLS_CONTEXT_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace boost::asio::ssl {
class context;
}

namespace a2amesh::http {

// Where a server's TLS material lives (PEM files).
struct TlsFiles {
  std::string cert_file;
  std::string key_file;
  // Client certificates are requested and must chain to it; empty: none
  // requested.
  std::string client_ca_file;
  // How often the files are looked at for changes.
  absl::Duration reload_interval = absl::Seconds(10);
};

// A server's TLS context, rebuilt from its files when they change: a new
// connection gets the newest context that loaded; connections already open
// keep theirs. A change that does not load (a key that is not the
// certificate's, a file half written) is logged and the previous context
// stays in use. Thread-safe.
class TlsContextSource {
 public:
  // Loads the files now: INVALID_ARGUMENT naming the file if they do not.
  static absl::StatusOr<std::shared_ptr<TlsContextSource>> Create(TlsFiles files);

  // The context for a new connection.
  std::shared_ptr<boost::asio::ssl::context> Current();

 private:
  struct Stamp {
    std::string cert, key, ca;  // inode, size and modification time; "": missing
    bool operator==(const Stamp& o) const { return cert == o.cert && key == o.key && ca == o.ca; }
  };
  explicit TlsContextSource(TlsFiles files) : files_(std::move(files)) {}
  Stamp Look() const;
  absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> Load() const;

  const TlsFiles files_;
  absl::Mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_ ABSL_GUARDED_BY(mu_);
  Stamp loaded_ ABSL_GUARDED_BY(mu_);
  absl::Time next_look_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::http

#endif  // A2AMESH_HTTP_TLS_CONTEXT_H_
