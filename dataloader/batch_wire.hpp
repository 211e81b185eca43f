// The loader -> worker data plane on the wire (docs/protocol.md, "Data plane"): a batch is one
// ZeroMQ multipart message [BatchHeader][frames][tokens]; LoaderControl messages (hello, credit)
// are one frame. Pixels never pass through Cap'n Proto or a std::string: the loader hands its
// batch buffer to zmq_msg_init_data and the worker keeps the received zmq_msg_t alive under the
// tensor that wraps it. decode_batch() validates everything a peer controls and its errors name
// the peer.
#pragma once

#include <zmq.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace harvest::data {

// One zmq_msg_t, closed on destruction (frees the buffer it owns, if any).
class ZmqMessage {
 public:
  ZmqMessage();                                // empty
  explicit ZmqMessage(size_t size);            // zmq-owned buffer of `size` bytes
  ZmqMessage(const void* bytes, size_t size);  // copy (small messages: headers, control)
  // Takes a malloc()ed buffer without copying; zmq free()s it once sent.
  static ZmqMessage adopt_malloced(void* data, size_t size);
  ~ZmqMessage();
  ZmqMessage(ZmqMessage&& other) noexcept;
  ZmqMessage& operator=(ZmqMessage&&) = delete;
  ZmqMessage(const ZmqMessage&) = delete;

  zmq_msg_t* get() { return &msg_; }
  const uint8_t* data() const;
  size_t size() const;

 private:
  mutable zmq_msg_t msg_;
};
using ZmqParts = std::vector<ZmqMessage>;

// Sends every part (zero-copy: the messages are consumed). Blocks up to `timeout_ms` for room
// (-1: forever); false when it timed out before the first part went out. `peer` names the
// socket in errors.
bool send_parts(void* socket, ZmqParts& parts, int timeout_ms, const std::string& peer);
// One whole multipart message if one is waiting (never blocks); parts are shared so a tensor can
// keep one alive.
std::optional<std::vector<std::shared_ptr<ZmqMessage>>> recv_parts(void* socket,
                                                                   const std::string& peer);

// What a batch must look like for this run.
struct BatchShape {
  uint64_t span = 0;  // shard positions per batch (data.batch_size)
  int64_t frames = 0, height = 0, width = 0;
  int64_t context = 0;  // token ids per clip
  size_t clip_bytes() const { return static_cast<size_t>(frames * height * width * 3); }
};

// One shard position of a batch: a clip (row of the frames tensor) or a skipped bad sample.
struct SlotOnWire {
  uint64_t sample_id = 0;
  int64_t row = -1;    // >= 0: row in frames/tokens
  std::string reason;  // bad: BadReason name
};

struct WireBatch {
  uint64_t generation = 0, global_index = 0, epoch = 0, cursor = 0;
  uint32_t loader_index = 0;
  std::vector<SlotOnWire> slots;       // span entries, in shard order
  int64_t rows = 0;                    // good clips
  std::shared_ptr<ZmqMessage> frames;  // uint8 [rows, T, H, W, 3]
  std::shared_ptr<ZmqMessage> tokens;  // int32 [rows, L], little-endian, maybe unaligned
};

// The loader side: header + the two tensors' buffers (taken over, not copied).
struct OutgoingBatch {
  uint64_t generation = 0, global_index = 0, epoch = 0, cursor = 0;
  uint32_t loader_index = 0;
  std::vector<SlotOnWire> slots;
  void* frames = nullptr;  // malloc()ed, rows * clip_bytes
  void* tokens = nullptr;  // malloc()ed, rows * context * 4
};
ZmqParts encode_batch(OutgoingBatch& batch, const BatchShape& shape);

// Parses and checks a batch message (all parts after any routing id). Throws Runtime naming
// `peer` on anything malformed: not Cap'n Proto, wrong version, tensors not matching `shape`,
// inconsistent sample lists.
WireBatch decode_batch(std::vector<std::shared_ptr<ZmqMessage>> parts, const BatchShape& shape,
                       const std::string& peer);

// What a coordinator-placed loader is told to build (LoaderControl.start).
struct LoaderAssignment {
  int32_t rank = 0;
  uint32_t world_size = 1;
  uint32_t count = 1;         // loaders feeding the worker (the message's loader_index is this one)
  uint64_t first_batch = 0;   // then first_batch + count, + 2 count, ...
  uint64_t epoch = 0, cursor = 0;  // sampler position of the first batch
};

struct LoaderControlMsg {
  enum class Kind { Hello, Credit, Start } kind = Kind::Hello;
  uint64_t generation = 0;
  uint32_t loader_index = 0;
  uint32_t credit = 0;
  uint64_t member_id = 0;  // Hello from a coordinator-placed loader
  LoaderAssignment start;  // Start
};
ZmqMessage encode_control(const LoaderControlMsg& msg);
LoaderControlMsg decode_control(const ZmqMessage& part, const std::string& peer);

}  // namespace harvest::data
