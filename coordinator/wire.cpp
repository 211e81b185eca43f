#include "coordinator/wire.hpp"

#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>

#include "core/error.hpp"

namespace harvest::coord {

OutMessage::OutMessage() : root_(builder_.initRoot<Envelope>()) {
  root_.setVersion(proto::PROTOCOL_VERSION);
}

std::string OutMessage::bytes() {
  const kj::Array<capnp::word> words = capnp::messageToFlatArray(builder_);
  const auto raw = words.asBytes();
  return std::string(reinterpret_cast<const char*>(raw.begin()), raw.size());
}

std::string encode(Envelope::Reader envelope) {
  capnp::MallocMessageBuilder builder;
  builder.setRoot(envelope);
  const kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  const auto raw = words.asBytes();
  return std::string(reinterpret_cast<const char*>(raw.begin()), raw.size());
}

InMessage::InMessage(std::unique_ptr<capnp::MallocMessageBuilder> copy)
    : copy_(std::move(copy)), root_(copy_->getRoot<Envelope>().asReader()) {}

Decoded decode(const std::string& bytes, size_t max_bytes) {
  using proto::ErrorKind;
  if (bytes.size() > max_bytes)
    return WireError{ErrorKind::TOO_LARGE,
                     cat("message of ", bytes.size(), " bytes exceeds the limit of ", max_bytes, " bytes")};
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0)
    return WireError{ErrorKind::MALFORMED,
                     cat("message of ", bytes.size(), " bytes is not a whole number of 8-byte words")};
  // ZeroMQ frames are not word-aligned; Cap'n Proto readers need aligned words.
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::ReaderOptions options;
  // Bounds the work a hostile message can cause (amplification through shared pointers).
  options.traversalLimitInWords = 4 * words.size() + 64;
  options.nestingLimit = 16;
  try {
    capnp::FlatArrayMessageReader reader(words.asPtr(), options);
    auto copy = std::make_unique<capnp::MallocMessageBuilder>();
    copy->setRoot(reader.getRoot<Envelope>());  // follows every pointer: malformed data throws here
    auto message = std::make_unique<InMessage>(std::move(copy));
    const uint16_t version = message->root().getVersion();
    if (version != proto::PROTOCOL_VERSION)
      return WireError{ErrorKind::BAD_VERSION, cat("protocol version ", version, " is not supported (this build speaks ",
                                                   proto::PROTOCOL_VERSION, ")")};
    return message;
  } catch (const kj::Exception& e) {
    return WireError{ErrorKind::MALFORMED, cat("not a valid Envelope: ", e.getDescription().cStr())};
  }
}

std::string body_name(Body::Which which) {
  switch (which) {
    case Body::REGISTER: return "register";
    case Body::ASSIGN: return "assign";
    case Body::HEARTBEAT: return "heartbeat";
    case Body::HEARTBEAT_ACK: return "heartbeatAck";
    case Body::RENDEZVOUS_OFFER: return "rendezvousOffer";
    case Body::RENDEZVOUS: return "rendezvous";
    case Body::ABORT: return "abort";
    case Body::SHARD_PLAN: return "shardPlan";
    case Body::STEP_REPORT: return "stepReport";
    case Body::CHECKPOINT_REQUEST: return "checkpointRequest";
    case Body::CHECKPOINT_ACK: return "checkpointAck";
    case Body::CHECKPOINT_COMMIT: return "checkpointCommit";
    case Body::EVAL_JOB: return "evalJob";
    case Body::EVAL_RESULT: return "evalResult";
    case Body::SHUTDOWN: return "shutdown";
    case Body::LEAVE: return "leave";
    case Body::ERROR: return "error";
    case Body::STATUS_REQUEST: return "statusRequest";
    case Body::STATUS_REPLY: return "statusReply";
    case Body::MEMBER_JOINED: return "memberJoined";
    case Body::MEMBER_LOST: return "memberLost";
    case Body::MEMBER_REATTACHED: return "memberReattached";
    case Body::GENERATION_FORMED: return "generationFormed";
    case Body::JOURNAL_WRITTEN: return "journalWritten";
  }
  return cat("unknown(", static_cast<int>(which), ")");
}

std::string role_name(proto::Role role) {
  switch (role) {
    case proto::Role::WORKER: return "worker";
    case proto::Role::LOADER: return "loader";
    case proto::Role::EVAL: return "eval";
  }
  return cat("role(", static_cast<int>(role), ")");
}

std::string state_name(proto::MemberState state) {
  switch (state) {
    case proto::MemberState::REGISTERED: return "registered";
    case proto::MemberState::FORMING: return "forming";
    case proto::MemberState::RUNNING: return "running";
    case proto::MemberState::ABORTED: return "aborted";
    case proto::MemberState::LOST: return "lost";
    case proto::MemberState::REATTACHING: return "reattaching";
    case proto::MemberState::LEFT: return "left";
    case proto::MemberState::EVALUATING: return "evaluating";
  }
  return cat("state(", static_cast<int>(state), ")");
}

std::string routing_id_of(proto::MemberEvent::Reader event) {
  const auto id = event.getRoutingId();
  return std::string(reinterpret_cast<const char*>(id.begin()), id.size());
}

std::vector<uint64_t> to_vector(capnp::List<uint64_t>::Reader list) {
  std::vector<uint64_t> out;
  out.reserve(list.size());
  for (const uint64_t v : list) out.push_back(v);
  return out;
}

std::string error_message(proto::ErrorKind kind, const std::string& text) {
  OutMessage out;
  auto err = out.body().initError();
  err.setKind(kind);
  err.setMessage(text);
  return out.bytes();
}

}  // namespace harvest::coord
