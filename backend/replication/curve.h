// CurveZMQ key pairs for replication links: generation, the per-host key
// file (docs/replication.md, "Security: CurveZMQ and ZAP") and the options
// making a ROUTER a CURVE server and a DEALER a CURVE client. Stateless and
// thread-safe; a socket passed in is used by one thread at a time, as usual.
#pragma once

#include <string>
#include <string_view>
#include <zmq.hpp>

#include "common/result.h"

namespace vnvram::replication {

// The ZAP domain of every vnvram CURVE server; ZapHandler admits no other.
inline constexpr std::string_view kZapDomain = "vnvram";

// Z85 text of a CurveZMQ (Curve25519) key pair, 40 characters each.
struct CurveKeyPair {
  std::string public_z85;
  std::string secret_z85;
};

// True when libzmq was built with CURVE (libsodium).
bool CurveSupported();

// A fresh key pair from libzmq (zmq_curve_keypair). kNotSupported when
// libzmq lacks CURVE.
Result<CurveKeyPair> GenerateCurveKeyPair();

// The public key that belongs to a secret key (zmq_curve_public).
// kInvalidArgument when `secret_z85` is not a key (the message never
// contains the secret); kNotSupported without CURVE.
Result<std::string> DerivePublicKey(std::string_view secret_z85);

// Checks that both keys are 40 Z85 characters encoding 32 bytes and that the
// public key is derived from the secret key. kInvalidArgument otherwise.
Status CheckKeyPair(const CurveKeyPair& pair);

// Writes a key file: "public-key = ..." and "secret-key = ..." lines under
// a comment. The pair is checked first (CheckKeyPair). The file is written
// to a temporary file beside `path` with mode 0600, fsynced, then moved into
// place and the directory fsynced: a crash leaves the old file or the new
// one, never a torn one. Without `overwrite` an existing `path` is left
// untouched and the call returns kAlreadyExists (the check and the move are
// one atomic link(2), so a concurrent writer cannot be overwritten either).
Status WriteKeyFile(const std::string& path, const CurveKeyPair& pair, bool overwrite);

// Reads a key file: lines "key = value", blank lines, and comment lines whose
// first non-blank character is '#' (a '#' elsewhere is part of the value: it
// is a Z85 character). Exactly the keys public-key and secret-key, once each.
// Errors are one line naming "path:line" and the key; a bad secret key is
// never echoed. The file must be a regular file of at most 4 KiB.
//
// Mode: like OpenSSH with private keys, a file that grants group or others
// any permission (mode & 0077) is refused with kPermissionDenied naming the
// mode, before its content is read; the key it holds is assumed disclosed.
Result<CurveKeyPair> LoadKeyFile(const std::string& path);

// Makes `s` (a ROUTER) a CURVE server with `own` key pair: ZMQ_CURVE_SERVER,
// ZMQ_CURVE_SECRETKEY, ZMQ_ZAP_DOMAIN = kZapDomain and
// ZMQ_ZAP_ENFORCE_DOMAIN, so a connection is refused (never admitted
// unauthenticated) when no ZapHandler is bound on the socket's context.
// Call before bind; kFailedPrecondition when `s` is already bound or
// connected, kInvalidArgument for a bad key, kNotSupported without CURVE.
Status ConfigureCurveServer(zmq::socket_t& s, const CurveKeyPair& own);

// Makes `s` (a DEALER) a CURVE client with `own` key pair that accepts only
// a server holding the secret key of `server_public_z85` (from the cluster
// file). Call before connect; errors as ConfigureCurveServer.
Status ConfigureCurveClient(zmq::socket_t& s, const CurveKeyPair& own,
                            std::string_view server_public_z85);

}  // namespace vnvram::replication
