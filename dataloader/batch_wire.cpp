#include "dataloader/batch_wire.hpp"

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/check_zmq.hpp"
#include "core/error.hpp"
#include "core/proto/batch.capnp.h"

namespace harvest::data {

ZmqMessage::ZmqMessage() {
  zmq_msg_init(&msg_);
}

ZmqMessage::ZmqMessage(size_t size) {
  check_zmq(zmq_msg_init_size(&msg_, size), "zmq_msg_init_size", cat(size, " bytes"));
}

ZmqMessage::ZmqMessage(const void* bytes, size_t size) : ZmqMessage(size) {
  if (size > 0) std::memcpy(zmq_msg_data(&msg_), bytes, size);
}

ZmqMessage ZmqMessage::adopt_malloced(void* data, size_t size) {
  ZmqMessage m;
  zmq_msg_close(&m.msg_);
  if (data == nullptr || size == 0) {
    std::free(data);
    zmq_msg_init(&m.msg_);
    return m;
  }
  const int rc = zmq_msg_init_data(
      &m.msg_, data, size, [](void* p, void*) { std::free(p); }, nullptr);
  if (rc != 0) {
    std::free(data);
    zmq_msg_init(&m.msg_);
    check_zmq(rc, "zmq_msg_init_data", cat(size, " bytes"));
  }
  return m;
}

ZmqMessage::~ZmqMessage() {
  zmq_msg_close(&msg_);
}

ZmqMessage::ZmqMessage(ZmqMessage&& other) noexcept {
  zmq_msg_init(&msg_);
  zmq_msg_move(&msg_, &other.msg_);
}

const uint8_t* ZmqMessage::data() const {
  return static_cast<const uint8_t*>(zmq_msg_data(&msg_));
}
size_t ZmqMessage::size() const {
  return zmq_msg_size(&msg_);
}

bool send_parts(void* socket, ZmqParts& parts, int timeout_ms, const std::string& peer) {
  check_zmq(zmq_setsockopt(socket, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms), "zmq_setsockopt",
            peer);
  for (size_t i = 0; i < parts.size(); ++i) {
    const int flags = i + 1 < parts.size() ? ZMQ_SNDMORE : 0;
    while (zmq_msg_send(parts[i].get(), socket, flags) < 0) {
      const int err = zmq_errno();
      if (err == EINTR) continue;
      // Once the first part is queued ZeroMQ takes the rest atomically; only the first can time
      // out.
      if (err == EAGAIN && i == 0) return false;
      check_zmq(-1, "zmq_msg_send", peer);
    }
  }
  return true;
}

std::optional<std::vector<std::shared_ptr<ZmqMessage>>> recv_parts(void* socket,
                                                                   const std::string& peer) {
  std::vector<std::shared_ptr<ZmqMessage>> parts;
  for (;;) {
    auto part = std::make_shared<ZmqMessage>();
    if (zmq_msg_recv(part->get(), socket, ZMQ_DONTWAIT) < 0) {
      const int err = zmq_errno();
      if (parts.empty() && (err == EAGAIN || err == EINTR)) return std::nullopt;
      check_zmq(-1, "zmq_msg_recv", peer);
    }
    const bool more = zmq_msg_more(part->get()) != 0;
    parts.push_back(std::move(part));
    if (!more) return parts;
  }
}

namespace {

ZmqMessage flat_message(capnp::MallocMessageBuilder& builder) {
  // The header is small (a few hundred bytes): one copy into a zmq-owned buffer.
  const kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  const auto bytes = words.asBytes();
  return ZmqMessage(bytes.begin(), bytes.size());
}

// ZeroMQ frames are not word-aligned; Cap'n Proto readers need aligned words.
kj::Array<capnp::word> aligned_words(const ZmqMessage& part, const char* what,
                                     const std::string& peer) {
  HARVEST_REQUIRE(part.size() > 0 && part.size() % sizeof(capnp::word) == 0, Runtime, peer, ": ",
                  what, " of ", part.size(), " bytes is not a whole number of 8-byte words");
  HARVEST_REQUIRE(part.size() <= (size_t{1} << 26), Runtime, peer, ": ", what, " of ", part.size(),
                  " bytes is over the 64 MiB limit");
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(part.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), part.data(), part.size());
  return words;
}

capnp::ReaderOptions reader_options(size_t words) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 4 * words + 64;
  options.nestingLimit = 16;
  return options;
}

void describe(proto::TensorDesc::Builder t, const char* name, proto::DType dtype,
              std::initializer_list<uint64_t> shape) {
  t.setName(name);
  t.setDtype(dtype);
  auto dims = t.initShape(static_cast<unsigned>(shape.size()));
  unsigned i = 0;
  for (uint64_t d : shape) dims.set(i++, d);
}

void expect_tensor(proto::TensorDesc::Reader t, const char* name, proto::DType dtype,
                   const std::vector<uint64_t>& shape, const std::string& peer) {
  const std::string got = t.getName().cStr();
  HARVEST_REQUIRE(got == name, Runtime, peer, ": batch tensor \"", got, "\" where \"", name,
                  "\" was expected");
  HARVEST_REQUIRE(t.getDtype() == dtype, Runtime, peer, ": batch tensor ", name, " has dtype ",
                  static_cast<int>(t.getDtype()), ", expected ", static_cast<int>(dtype));
  const auto dims = t.getShape();
  bool same = dims.size() == shape.size();
  for (unsigned i = 0; same && i < dims.size(); ++i) same = dims[i] == shape[i];
  if (!same) {
    std::string g, e;
    for (auto d : dims) g += cat(g.empty() ? "" : ",", d);
    for (auto d : shape) e += cat(e.empty() ? "" : ",", d);
    fail(ErrorKind::Runtime, peer, ": batch tensor ", name, " has shape [", g, "], expected [", e,
         "]");
  }
}

}  // namespace

ZmqParts encode_batch(OutgoingBatch& batch, const BatchShape& shape) {
  capnp::MallocMessageBuilder builder;
  auto h = builder.initRoot<proto::BatchHeader>();
  h.setVersion(proto::BATCH_VERSION);
  h.setGeneration(batch.generation);
  h.setGlobalIndex(batch.global_index);
  h.setEpoch(batch.epoch);
  h.setCursor(batch.cursor);
  h.setLoaderIndex(batch.loader_index);
  uint64_t rows = 0, bad = 0;
  for (const auto& s : batch.slots) (s.row >= 0 ? rows : bad) += 1;
  auto ids = h.initSampleIds(static_cast<unsigned>(rows));
  auto bads = h.initBadSamples(static_cast<unsigned>(bad));
  unsigned r = 0, b = 0;
  for (size_t i = 0; i < batch.slots.size(); ++i) {
    const SlotOnWire& s = batch.slots[i];
    if (s.row >= 0) {
      HARVEST_ASSERT(s.row == static_cast<int64_t>(r), "batch rows out of order");
      ids.set(r++, s.sample_id);
    } else {
      auto e = bads[b++];
      e.setSampleId(s.sample_id);
      e.setReason(s.reason);
      e.setOffset(static_cast<uint32_t>(i));
    }
  }
  h.setBadSampleCount(static_cast<uint32_t>(bad));
  auto tensors = h.initTensors(2);
  const auto T = static_cast<uint64_t>(shape.frames), H = static_cast<uint64_t>(shape.height),
             W = static_cast<uint64_t>(shape.width), L = static_cast<uint64_t>(shape.context);
  describe(tensors[0], "frames", proto::DType::UINT8, {rows, T, H, W, 3});
  describe(tensors[1], "tokens", proto::DType::INT32, {rows, L});
  ZmqParts parts;
  parts.push_back(flat_message(builder));
  parts.push_back(ZmqMessage::adopt_malloced(batch.frames, rows * shape.clip_bytes()));
  parts.push_back(ZmqMessage::adopt_malloced(batch.tokens, rows * L * sizeof(int32_t)));
  batch.frames = batch.tokens = nullptr;
  return parts;
}

WireBatch decode_batch(std::vector<std::shared_ptr<ZmqMessage>> parts, const BatchShape& shape,
                       const std::string& peer) {
  HARVEST_REQUIRE(parts.size() == 3, Runtime, peer, ": batch message has ", parts.size(),
                  " parts, expected 3 (BatchHeader, frames, tokens)");
  const kj::Array<capnp::word> words = aligned_words(*parts[0], "BatchHeader", peer);
  WireBatch out;
  try {
    capnp::FlatArrayMessageReader reader(words.asPtr(), reader_options(words.size()));
    const auto h = reader.getRoot<proto::BatchHeader>();
    HARVEST_REQUIRE(h.getVersion() == proto::BATCH_VERSION, Runtime, peer, ": batch version ",
                    h.getVersion(), " is not supported (this build speaks ", proto::BATCH_VERSION,
                    ")");
    out.generation = h.getGeneration();
    out.global_index = h.getGlobalIndex();
    out.epoch = h.getEpoch();
    out.cursor = h.getCursor();
    out.loader_index = h.getLoaderIndex();
    const auto ids = h.getSampleIds();
    const auto bads = h.getBadSamples();
    const uint64_t span = static_cast<uint64_t>(ids.size()) + bads.size();
    HARVEST_REQUIRE(span == shape.span, Runtime, peer, ": batch ", out.global_index, " covers ",
                    span, " samples (", ids.size(), " clips + ", bads.size(),
                    " bad), expected data.batch_size = ", shape.span);
    HARVEST_REQUIRE(h.getBadSampleCount() == bads.size(), Runtime, peer, ": batch ",
                    out.global_index, " badSampleCount ", h.getBadSampleCount(), " but ",
                    bads.size(), " badSamples listed");
    out.rows = static_cast<int64_t>(ids.size());
    out.slots.resize(span);
    std::vector<bool> taken(span, false);
    for (const auto bad : bads) {
      const uint32_t at = bad.getOffset();
      HARVEST_REQUIRE(at < span && !taken[at], Runtime, peer, ": batch ", out.global_index,
                      " bad sample offset ", at, " is outside [0, ", span, ") or repeated");
      taken[at] = true;
      out.slots[at].sample_id = bad.getSampleId();
      out.slots[at].reason = bad.getReason().cStr();
      HARVEST_REQUIRE(!out.slots[at].reason.empty(), Runtime, peer, ": batch ", out.global_index,
                      " bad sample ", bad.getSampleId(), " has no reason");
    }
    int64_t row = 0;
    for (uint64_t i = 0; i < span; ++i) {
      if (taken[i]) continue;
      out.slots[i].sample_id = ids[static_cast<unsigned>(row)];
      out.slots[i].row = row++;
    }
    const auto tensors = h.getTensors();
    HARVEST_REQUIRE(tensors.size() == 2, Runtime, peer, ": batch ", out.global_index, " describes ",
                    tensors.size(), " tensors, expected 2 (frames, tokens)");
    const auto rows = static_cast<uint64_t>(out.rows);
    expect_tensor(tensors[0], "frames", proto::DType::UINT8,
                  {rows, static_cast<uint64_t>(shape.frames), static_cast<uint64_t>(shape.height),
                   static_cast<uint64_t>(shape.width), 3},
                  peer);
    expect_tensor(tensors[1], "tokens", proto::DType::INT32,
                  {rows, static_cast<uint64_t>(shape.context)}, peer);
  } catch (const kj::Exception& e) {
    fail(ErrorKind::Runtime, peer, ": not a valid BatchHeader: ", e.getDescription().cStr());
  }
  const size_t frame_bytes = static_cast<size_t>(out.rows) * shape.clip_bytes();
  const size_t token_bytes = static_cast<size_t>(out.rows * shape.context) * sizeof(int32_t);
  HARVEST_REQUIRE(parts[1]->size() == frame_bytes, Runtime, peer, ": batch ", out.global_index,
                  " frames part has ", parts[1]->size(), " bytes, the header says ", frame_bytes);
  HARVEST_REQUIRE(parts[2]->size() == token_bytes, Runtime, peer, ": batch ", out.global_index,
                  " tokens part has ", parts[2]->size(), " bytes, the header says ", token_bytes);
  out.frames = std::move(parts[1]);
  out.tokens = std::move(parts[2]);
  return out;
}

ZmqMessage encode_control(const LoaderControlMsg& msg) {
  capnp::MallocMessageBuilder builder;
  auto c = builder.initRoot<proto::LoaderControl>();
  c.setVersion(proto::BATCH_VERSION);
  c.setGeneration(msg.generation);
  c.setLoaderIndex(msg.loader_index);
  c.setMemberId(msg.member_id);
  switch (msg.kind) {
    case LoaderControlMsg::Kind::Hello:
      c.getBody().setHello();
      break;
    case LoaderControlMsg::Kind::Credit:
      c.getBody().setCredit(msg.credit);
      break;
    case LoaderControlMsg::Kind::Start: {
      auto a = c.getBody().initStart();
      a.setRank(msg.start.rank);
      a.setWorldSize(msg.start.world_size);
      a.setCount(msg.start.count);
      a.setFirstBatch(msg.start.first_batch);
      a.setEpoch(msg.start.epoch);
      a.setCursor(msg.start.cursor);
      break;
    }
  }
  return flat_message(builder);
}

LoaderControlMsg decode_control(const ZmqMessage& part, const std::string& peer) {
  const kj::Array<capnp::word> words = aligned_words(part, "LoaderControl", peer);
  LoaderControlMsg out;
  try {
    capnp::FlatArrayMessageReader reader(words.asPtr(), reader_options(words.size()));
    const auto c = reader.getRoot<proto::LoaderControl>();
    HARVEST_REQUIRE(c.getVersion() == proto::BATCH_VERSION, Runtime, peer, ": control version ",
                    c.getVersion(), " is not supported (this build speaks ", proto::BATCH_VERSION,
                    ")");
    out.generation = c.getGeneration();
    out.loader_index = c.getLoaderIndex();
    out.member_id = c.getMemberId();
    switch (c.getBody().which()) {
      case proto::LoaderControl::Body::HELLO:
        out.kind = LoaderControlMsg::Kind::Hello;
        break;
      case proto::LoaderControl::Body::CREDIT:
        out.kind = LoaderControlMsg::Kind::Credit;
        out.credit = c.getBody().getCredit();
        break;
      case proto::LoaderControl::Body::START: {
        const auto a = c.getBody().getStart();
        out.kind = LoaderControlMsg::Kind::Start;
        out.start = {a.getRank(), a.getWorldSize(), a.getCount(), a.getFirstBatch(), a.getEpoch(),
                     a.getCursor()};
        HARVEST_REQUIRE(out.start.world_size >= 1 && out.start.rank >= 0 &&
                            static_cast<uint32_t>(out.start.rank) < out.start.world_size &&
                            out.start.count >= 1 && out.loader_index < out.start.count,
                        Runtime, peer, ": start names rank ", out.start.rank, " of ",
                        out.start.world_size, ", loader ", out.loader_index, " of ",
                        out.start.count);
        break;
      }
      default:
        fail(ErrorKind::Runtime, peer, ": unknown LoaderControl message (union tag ",
             static_cast<int>(c.getBody().which()), ")");
    }
  } catch (const kj::Exception& e) {
    fail(ErrorKind::Runtime, peer, ": not a valid LoaderControl: ", e.getDescription().cStr());
  }
  return out;
}

}  // namespace harvest::data
