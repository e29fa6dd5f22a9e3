#include "proxy/k8s/kube_tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/ip.h"

namespace weir::k8s {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct StoreFree {
  void operator()(X509_STORE* store) const { X509_STORE_free(store); }
};
using UniqueBio = std::unique_ptr<BIO, BioFree>;
using UniqueX509 = std::unique_ptr<X509, X509Free>;

// OpenSSL's queued errors as text (and the queue cleared), for messages.
std::string OpenSslErrors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    absl::StrAppend(&text, text.empty() ? "" : "; ", buffer);
  }
  return text.empty() ? "no detail" : text;
}

// Every certificate of a PEM bundle, in order.
absl::StatusOr<std::vector<UniqueX509>> ReadCertificates(const std::string& pem, const char* what) {
  UniqueBio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<UniqueX509> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(cert);
  ERR_clear_error();  // the loop ends on a "no start line" error
  if (certs.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": no PEM certificate found"));
  return certs;
}

absl::Status SetTrustAnchors(SSL_CTX* context, const KubeConfig& config) {
  if (config.certificate_authority.empty()) {
    if (SSL_CTX_set_default_verify_paths(context) != 1) {
      return absl::InternalError(absl::StrCat("loading the system trust store: ", OpenSslErrors()));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> pem = config.certificate_authority.Read();
  if (!pem.ok())
    return absl::FailedPreconditionError(absl::StrCat("certificate authority: ", pem.status().message()));
  absl::StatusOr<std::vector<UniqueX509>> certs = ReadCertificates(*pem, "certificate authority");
  if (!certs.ok()) return certs.status();
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  for (const UniqueX509& cert : *certs) {
    if (X509_STORE_add_cert(store.get(), cert.get()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("certificate authority: ", OpenSslErrors()));
    }
  }
  SSL_CTX_set_cert_store(context, store.release());  // the context owns it from here
  return absl::OkStatus();
}

absl::Status SetVerifiedName(SSL_CTX* context, const std::string& name) {
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(context);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  // An IP literal must match an IP SAN (in-cluster, the server is the kubernetes Service's IP).
  const int ok = IpAddress::Parse(name).ok() ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                                             : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
  if (ok != 1) return absl::InvalidArgumentError(absl::StrCat("cannot verify server name \"", name, "\""));
  return absl::OkStatus();
}

absl::Status SetClientCertificate(SSL_CTX* context, const KubeConfig& config) {
  absl::StatusOr<std::string> cert_pem = config.client_certificate.Read();
  if (!cert_pem.ok())
    return absl::FailedPreconditionError(absl::StrCat("client certificate: ", cert_pem.status().message()));
  absl::StatusOr<std::string> key_pem = config.client_key.Read();
  if (!key_pem.ok())
    return absl::FailedPreconditionError(absl::StrCat("client key: ", key_pem.status().message()));
  absl::StatusOr<std::vector<UniqueX509>> certs = ReadCertificates(*cert_pem, "client certificate");
  if (!certs.ok()) return certs.status();
  UniqueBio key_bio(BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size())));
  std::unique_ptr<EVP_PKEY, KeyFree> key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!key) return absl::InvalidArgumentError(absl::StrCat("client key: ", OpenSslErrors()));
  // The first certificate is the client's own; any others are intermediates sent along with it.
  if (SSL_CTX_use_certificate(context, (*certs)[0].get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("client certificate: ", OpenSslErrors()));
  }
  for (size_t i = 1; i < certs->size(); ++i) {
    if (SSL_CTX_add1_chain_cert(context, (*certs)[i].get()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("client certificate chain: ", OpenSslErrors()));
    }
  }
  if (SSL_CTX_use_PrivateKey(context, key.get()) != 1 || SSL_CTX_check_private_key(context) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("client key does not match the certificate: ", OpenSslErrors()));
  }
  return absl::OkStatus();
}

// Handshakes run on the requesting thread, so the reason can wait there for the error message.
thread_local std::string certificate_rejection;

int RememberRejection(int preverify_ok, X509_STORE_CTX* store) {
  if (preverify_ok == 0 && certificate_rejection.empty()) {
    char subject[256] = "";
    if (X509* cert = X509_STORE_CTX_get_current_cert(store)) {
      X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
    }
    certificate_rejection = absl::StrCat(X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)),
                                         " (certificate ", subject, ")");
  }
  return preverify_ok;
}

}  // namespace

std::string TakeCertificateRejection() { return std::exchange(certificate_rejection, std::string()); }

absl::Status ConfigureClientTls(SSL_CTX* context, const KubeConfig& config, const std::string& verify_name) {
  if (context == nullptr) return absl::InternalError("no TLS context");
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  if (config.insecure_skip_tls_verify) {
    SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nullptr);
  } else {
    if (absl::Status s = SetTrustAnchors(context, config); !s.ok()) return s;
    if (absl::Status s = SetVerifiedName(context, verify_name); !s.ok()) return s;
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, RememberRejection);
  }
  if (!config.client_certificate.empty()) {
    if (absl::Status s = SetClientCertificate(context, config); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace weir::k8s
