// Encoding and validated decoding of protocol Envelopes.
//
// decode() is the only way bytes from the network become a message: it checks the size limit,
// the framing, deep-copies the message (so every pointer is followed once, under a traversal
// limit, and later field reads cannot throw) and checks the protocol version. Actors only ever
// see messages that passed it.
#pragma once

#include <capnp/message.h>

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/proto/protocol.capnp.h"

namespace harvest::coord {

using proto::Envelope;
using Body = proto::Envelope::Body;

// A message being built: an Envelope with the current protocol version already set.
class OutMessage {
 public:
  OutMessage();
  Body::Builder body() { return root_.getBody(); }
  Envelope::Builder root() { return root_; }
  std::string bytes();  // the flat wire encoding

 private:
  capnp::MallocMessageBuilder builder_;
  Envelope::Builder root_;
};

// A validated message received from the wire or another actor.
class InMessage {
 public:
  explicit InMessage(std::unique_ptr<capnp::MallocMessageBuilder> copy);
  Envelope::Reader root() const { return root_; }
  Body::Reader body() const { return root_.getBody(); }
  Body::Which which() const { return root_.getBody().which(); }

 private:
  std::unique_ptr<capnp::MallocMessageBuilder> copy_;
  Envelope::Reader root_;
};

struct WireError {
  proto::ErrorKind kind;
  std::string message;
};

using Decoded = std::variant<std::unique_ptr<InMessage>, WireError>;

// Never throws: every problem with `bytes` becomes a WireError naming it.
Decoded decode(const std::string& bytes, size_t max_bytes);

// The name of a body member ("register", "heartbeat", ...; "unknown(N)" for members this build
// does not know), for logs and errors.
std::string body_name(Body::Which which);
std::string role_name(proto::Role role);
std::string state_name(proto::MemberState state);

// The flat encoding of an envelope that was read (re-encoded canonically).
std::string encode(Envelope::Reader envelope);

// Cap'n Proto list iterators are not standard iterators: copy lists element by element.
std::vector<uint64_t> to_vector(capnp::List<uint64_t>::Reader list);

// The ZeroMQ routing id a member event carries (where to reach that member).
std::string routing_id_of(proto::MemberEvent::Reader event);

// An Error envelope's bytes.
std::string error_message(proto::ErrorKind kind, const std::string& text);

}  // namespace harvest::coord
