#include "testing/test_certs.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace a2amesh::testing {
namespace {

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(absl::StrCat("test_certs: ", what, " failed"));
}

EVP_PKEY* NewKey() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  Check(key != nullptr, "EVP_EC_gen");
  return key;
}

std::string Pem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

std::string Pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  Check(ext != nullptr, "X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key`, named `cn`, signed by `issuer_key` (self-signed
// if `issuer` is null).
X509* NewCert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
              absl::Duration not_before, absl::Duration not_after) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  BIGNUM* serial = BN_new();
  BN_rand(serial, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
  BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert));
  BN_free(serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), absl::ToInt64Seconds(not_before));
  X509_gmtime_adj(X509_getm_notAfter(cert), absl::ToInt64Seconds(not_after));
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer) : name);
  return cert;
}

void Sign(X509* cert, EVP_PKEY* key) { Check(X509_sign(cert, key, EVP_sha256()) > 0, "X509_sign"); }

}  // namespace

struct TestCa::Key {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  ~Key() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

TestCa::TestCa(const std::string& name) : key_(std::make_unique<Key>()) {
  key_->key = NewKey();
  key_->cert = NewCert(key_->key, name, nullptr, nullptr, -absl::Hours(1), absl::Hours(24 * 30));
  AddExtension(key_->cert, key_->cert, NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(key_->cert, key_->cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(key_->cert, key_->cert, NID_subject_key_identifier, "hash");
  Sign(key_->cert, key_->key);
  ca_.cert_pem = Pem(key_->cert);
  ca_.key_pem = Pem(key_->key);
}

TestCa::~TestCa() = default;

KeyCert TestCa::Issue(const CertSpec& spec) const {
  EVP_PKEY* key = NewKey();
  X509* cert =
      NewCert(key, spec.common_name, key_->cert, key_->key, spec.not_before, spec.not_after);
  std::vector<std::string> sans;
  for (const std::string& uri : spec.uris) sans.push_back("URI:" + uri);
  for (const std::string& dns : spec.dns_names) sans.push_back("DNS:" + dns);
  for (const std::string& ip : spec.ips) sans.push_back("IP:" + ip);
  AddExtension(cert, key_->cert, NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert, key_->cert, NID_key_usage, "critical,digitalSignature,keyAgreement");
  AddExtension(cert, key_->cert, NID_ext_key_usage, "serverAuth,clientAuth");
  AddExtension(cert, key_->cert, NID_authority_key_identifier, "keyid:always");
  if (!sans.empty()) {
    AddExtension(cert, key_->cert, NID_subject_alt_name, absl::StrJoin(sans, ","));
  }
  Sign(cert, key_->key);
  KeyCert out{Pem(cert), Pem(key)};
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

KeyCert TestCa::IssueNode(const std::string& node_id, const std::string& trust_domain) const {
  CertSpec spec;
  spec.common_name = node_id;
  spec.uris = {absl::StrCat("spiffe://", trust_domain, "/node/", node_id)};
  return Issue(spec);
}

NodeTlsFiles WriteNodeTls(const std::string& dir, const TestCa& ca, const std::string& node_id) {
  NodeTlsFiles files{absl::StrCat(dir, "/", node_id, ".crt"),
                     absl::StrCat(dir, "/", node_id, ".key"), absl::StrCat(dir, "/ca.crt")};
  KeyCert kc = ca.IssueNode(node_id);
  WriteFileAtomically(files.ca, ca.cert_pem());
  WriteFileAtomically(files.key, kc.key_pem);
  WriteFileAtomically(files.cert, kc.cert_pem);
  return files;
}

void WriteFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    Check(static_cast<bool>(out), "writing a test file");
  }
  Check(std::rename(tmp.c_str(), path.c_str()) == 0, "rename");
}

}  // namespace a2amesh::testing
