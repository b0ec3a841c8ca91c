// The server's certificate: a self-signed one is made on first start so that TLS works out of the box.
#pragma once

#include <filesystem>
#include <string>

namespace tern::tls {

// Makes a self-signed certificate (EC P-256, ten years, CN and subjectAltName = hostname) when neither file
// exists; the key is written with mode 0600. Returns true when it made one. Throws std::runtime_error when
// only one of the two exists or the files cannot be written.
bool ensure_certificate(const std::filesystem::path& cert, const std::filesystem::path& key,
                        const std::string& hostname);

}  // namespace tern::tls
