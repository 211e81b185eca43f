// CURVE keys: Z85 text files (40 characters, one key per file; an allow-list file holds one
// public key per line; lines starting with '#' are comments).
#pragma once

#include <set>
#include <string>

namespace harvest::coord {

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;
};

CurveKeyPair generate_keypair();
// Writes PREFIX.public (0644) and PREFIX.secret (0600, created exclusively: never overwritten).
void write_keypair(const CurveKeyPair& keys, const std::string& prefix);
// Reads one Z85 key; throws Config naming the file and what is wrong with it.
std::string read_key_file(const std::string& path, const std::string& key_name);
// Reads an allow-list of public keys; throws Config naming the file and line.
std::set<std::string> read_authorized_keys(const std::string& path);

// Client-side CURVE settings: all empty, or all three set.
struct CurveClientKeys {
  std::string server_public;
  std::string client_public;
  std::string client_secret;
  bool enabled() const { return !server_public.empty(); }
};

}  // namespace harvest::coord
