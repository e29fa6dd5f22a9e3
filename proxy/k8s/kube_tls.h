// TLS for API server connections, set directly on the OpenSSL context of an httplib::SSLClient.
// httplib's own verification is left off: given a CA it would still add the system trust store
// (SSL_CTX_set_default_verify_paths), so a cluster CA would not be the only anchor. Here OpenSSL
// verifies during the handshake (chain and host name or IP), against exactly the configured CA.
#pragma once

#include <openssl/ssl.h>

#include <string>

#include "absl/status/status.h"
#include "proxy/k8s/kube_config.h"

namespace weir::k8s {

// Trust anchors (config.certificate_authority, or the system store when empty), verification of
// `verify_name` (a DNS name or an IP literal) unless insecure_skip_tls_verify, and the client
// certificate and key when configured. Reads file-based material now, so call it per connection
// for rotated files to take effect.
absl::Status ConfigureClientTls(SSL_CTX* context, const KubeConfig& config, const std::string& verify_name);

// Why the last failed handshake on this thread rejected the server's certificate (e.g.
// "unable to get local issuer certificate", "hostname mismatch"), then cleared; "" if it did not.
std::string TakeCertificateRejection();

}  // namespace weir::k8s
