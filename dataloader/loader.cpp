#include "dataloader/loader.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>

#include "coordinator/client.hpp"
#include "coordinator/zmq_socket.hpp"
#include "core/config/config.hpp"
#include "core/error.hpp"
#include "dataloader/batch_wire.hpp"
#include "dataloader/decode_pool.hpp"
#include "dataloader/sample_decoder.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace harvest::data {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_stop_signal(int) {
  g_stop = 1;
}

// A batch this loader is building: its shard span and the decode of each position.
struct PlannedBatch {
  uint64_t global_index = 0;
  SamplerState start;
  struct Slot {
    uint64_t index = 0, epoch = 0;
    std::shared_ptr<DecodePool::Task> task;
  };
  std::vector<Slot> slots;
  size_t resolved = 0;  // slots [0, resolved) are in the buffers below
  int64_t rows = 0;     // good clips among them
  OutgoingBatch out;
  ~PlannedBatch() {
    std::free(out.frames);
    std::free(out.tokens);
  }
};

// What a loader needs for any assignment: the dataset, its decoder and the decode threads.
struct LoaderContext {
  Config config;
  std::shared_ptr<const Manifest> manifest;
  std::shared_ptr<const SampleDecoder> decoder;
  BatchShape shape;
  SkipTally skips;

  // `origin` names where the config came from, for messages.
  LoaderContext(Config loaded, const std::string& origin) : config(std::move(loaded)) {
    HARVEST_REQUIRE(!config.model.vocab.empty(), Config, origin,
                    ": model.vocab is required (loaders tokenize captions)");
    manifest = std::make_shared<const Manifest>(
        load_manifest(config.data.train_manifest, config.data.root));
    auto tokenizer = std::make_shared<const tokenizer::Tokenizer>(
        tokenizer::Tokenizer::load(config.model.vocab));
    decoder = std::make_shared<const SampleDecoder>(config, manifest, tokenizer);
    shape = BatchShape{static_cast<uint64_t>(config.data.batch_size), config.model.frames,
                       config.model.image_size, config.model.image_size,
                       config.model.context_length};
  }

  void log_skips(const std::string& who) const {
    if (skips.total() == 0) return;
    std::string counts;
    for (const auto& [reason, n] : skips.counts())
      counts += cat(counts.empty() ? "" : ", ", reason, " ", n);
    spdlog::info("{}: {} bad samples skipped ({})", who, skips.total(), counts);
  }
};

// One connection to a worker and what this loader builds for it: batches first, first + count,
// ... of the worker's shard stream, within the credit the worker granted.
class Feed {
 public:
  // `curve`: keys for a CURVE data endpoint (server_public: the worker's), or none.
  Feed(LoaderContext& ctx, coord::ZmqContext& zmq, const std::string& endpoint,
       const std::string& routing_id, const coord::CurveClientKeys& curve = {})
      : ctx_(ctx), socket_(zmq, ZMQ_DEALER, endpoint), peer_(cat("worker endpoint ", endpoint)) {
    socket_.set(ZMQ_ROUTING_ID, routing_id);
    socket_.set(ZMQ_SNDHWM, static_cast<int>(ctx.config.data.queue_depth) + 2);
    if (curve.enabled()) {
      socket_.set(ZMQ_CURVE_SERVERKEY, curve.server_public);
      socket_.set(ZMQ_CURVE_PUBLICKEY, curve.client_public);
      socket_.set(ZMQ_CURVE_SECRETKEY, curve.client_secret);
    }
    socket_.connect(endpoint);
  }

  void send_control(const LoaderControlMsg& msg) {
    ZmqParts parts;
    parts.push_back(encode_control(msg));
    send_parts(socket_.get(), parts, -1, peer_);
  }

  // Build from here on; what was in progress for an earlier assignment is dropped.
  void assign(uint64_t incarnation, uint32_t index, const LoaderAssignment& a) {
    unassign();
    incarnation_ = incarnation;
    index_ = index;
    assignment_ = a;
    sampler_.emplace(ctx_.manifest->entries.size(), static_cast<uint64_t>(ctx_.config.train.seed),
                     a.world_size, a.rank, SamplerState{a.epoch, a.cursor});
    next_global_ = a.first_batch;
    // FFmpeg's interrupt callback stops a reader at decode_timeout_s; a decode that ignores it is
    // abandoned one second later.
    pool_ = std::make_unique<DecodePool>(static_cast<int>(ctx_.config.data.decode_threads),
                                         ctx_.config.data.decode_timeout_s + 1.0);
    spdlog::info("loader {}/{} (rank {}, incarnation {}) from batch {} at epoch {} cursor {}",
                 index, a.count, a.rank, incarnation, a.first_batch, a.epoch, a.cursor);
  }

  void unassign() {
    planned_.clear();
    pool_.reset();  // drops queued decodes
    sampler_.reset();
    granted_ = sent_ = 0;
    first_ = true;
  }

  // Takes control messages: credit (for the current incarnation), and with `placed` a start.
  void read_control(bool placed) {
    while (auto parts = recv_parts(socket_.get(), peer_)) {
      HARVEST_REQUIRE(parts->size() == 1, Runtime, peer_, ": control message has ",
                      parts->size(), " parts, expected 1");
      const LoaderControlMsg msg = decode_control(*parts->front(), peer_);
      if (msg.kind == LoaderControlMsg::Kind::Start && placed) {
        assign(msg.generation, msg.loader_index, msg.start);
        continue;
      }
      HARVEST_REQUIRE(msg.kind == LoaderControlMsg::Kind::Credit, Runtime, peer_,
                      ": unexpected control message from the worker");
      if (msg.generation == incarnation_ && sampler_) granted_ += msg.credit;
    }
  }

  // One round: plan batches within credit, resolve the front one, send it when complete. Returns
  // false when there was nothing to do (the caller may wait).
  bool work(const volatile std::sig_atomic_t& stop) {
    if (!sampler_) return false;
    while (sent_ + planned_.size() < granted_) plan_batch();
    if (planned_.empty()) return false;
    PlannedBatch& front = planned_.front();
    bool complete = false;
    while (!complete && !stop) {
      auto sample = pool_->wait_for(front.slots[front.resolved].task, std::chrono::milliseconds(5));
      if (!sample) break;
      front.slots[front.resolved].task.reset();
      complete = resolve(front, std::move(*sample));
    }
    if (!complete) return true;
    ZmqParts parts = encode_batch(front.out, ctx_.shape);
    while (!stop && !send_parts(socket_.get(), parts, 1000, peer_)) {
    }
    planned_.pop_front();
    ++sent_;
    return true;
  }

  coord::ZmqSocket& socket() { return socket_; }

 private:
  void plan_batch() {
    const uint64_t span = ctx_.shape.span;
    if (!first_) sampler_->skip(span * static_cast<uint64_t>(assignment_.count - 1));
    first_ = false;
    PlannedBatch& b = planned_.emplace_back();
    b.global_index = next_global_;
    next_global_ += assignment_.count;
    b.start = sampler_->state();
    b.slots.resize(span);
    for (auto& slot : b.slots) {
      slot.index = sampler_->next_wrapping();
      slot.epoch = sampler_->state().epoch;
      slot.task = pool_->submit([decoder = ctx_.decoder, index = slot.index, epoch = slot.epoch] {
        return decoder->decode(index, epoch);
      });
    }
    b.out.generation = incarnation_;
    b.out.global_index = b.global_index;
    b.out.loader_index = index_;
    b.out.epoch = b.start.epoch;
    b.out.cursor = b.start.cursor;
    b.out.frames = std::malloc(std::max<size_t>(1, span * ctx_.shape.clip_bytes()));
    b.out.tokens = std::calloc(span * static_cast<size_t>(ctx_.shape.context), sizeof(int32_t));
    HARVEST_REQUIRE(b.out.frames && b.out.tokens, Runtime, "loader ", index_,
                    ": out of memory for a batch of ", span * ctx_.shape.clip_bytes(), " bytes");
  }

  // Moves one decoded sample into the batch; true when that batch is complete.
  bool resolve(PlannedBatch& b, DecodedSample s) {
    const BatchShape& shape = ctx_.shape;
    const auto& slot = b.slots[b.resolved];
    SlotOnWire wire;
    wire.sample_id = slot.index;
    if (s.bad) {
      wire.reason = to_string(*s.bad);
      ctx_.skips.record(slot.index, *s.bad, s.bad_message);
    } else {
      const int64_t row = b.rows++;
      wire.row = row;
      std::memcpy(
          static_cast<uint8_t*>(b.out.frames) + static_cast<size_t>(row) * shape.clip_bytes(),
          s.pixels.data(), shape.clip_bytes());
      std::memcpy(
          static_cast<int32_t*>(b.out.tokens) + row * shape.context, s.ids.data(),
          std::min<size_t>(s.ids.size(), static_cast<size_t>(shape.context)) * sizeof(int32_t));
    }
    b.out.slots.push_back(std::move(wire));
    ++b.resolved;
    return b.resolved == b.slots.size();
  }

  LoaderContext& ctx_;
  coord::ZmqSocket socket_;
  std::string peer_;
  uint64_t incarnation_ = 0;
  uint32_t index_ = 0;
  LoaderAssignment assignment_;
  std::optional<EpochSampler> sampler_;
  std::unique_ptr<DecodePool> pool_;
  std::deque<PlannedBatch> planned_;  // declared after pool_: destroyed first
  uint64_t granted_ = 0, sent_ = 0, next_global_ = 0;
  bool first_ = true;
};

}  // namespace

int run_loader(const LoaderOptions& o) {
  HARVEST_REQUIRE(o.count >= 1 && o.index >= 0 && o.index < o.count, Usage, "loader index ",
                  o.index, " outside the worker's ", o.count, " loaders");
  LoaderContext ctx(load_config(o.config_file, {}), o.config_file);
  const pid_t parent = ::getppid();
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);

  coord::ZmqContext zmq;
  Feed feed(ctx, zmq, o.endpoint, cat("loader", o.index, ".g", o.generation));
  feed.send_control({LoaderControlMsg::Kind::Hello, o.generation, static_cast<uint32_t>(o.index), 0, 0, {}});
  feed.assign(o.generation, static_cast<uint32_t>(o.index),
              LoaderAssignment{o.rank, static_cast<uint32_t>(o.world_size),
                               static_cast<uint32_t>(o.count), o.first_batch, o.start.epoch,
                               o.start.cursor});
  while (!g_stop) {
    if (::getppid() != parent) {
      spdlog::warn("loader {}: worker (pid {}) is gone; exiting", o.index, parent);
      break;
    }
    feed.read_control(/*placed=*/false);
    if (!feed.work(g_stop)) coord::poll_readable({&feed.socket()}, std::chrono::milliseconds(100));
  }
  ctx.log_skips(cat("loader ", o.index));
  return 0;
}

int run_placed_loader(const Config& config, const std::string& origin,
                      const std::string& coordinator_address) {
  LoaderContext ctx(config, origin);
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  coord::ClientOptions options = coord::client_options(ctx.config, proto::Role::LOADER);
  if (!coordinator_address.empty()) options.address = coordinator_address;
  coord::CoordinatorClient client(options);
  spdlog::info("loader: registering with the coordinator at {}", options.address);

  coord::ZmqContext zmq;
  std::unique_ptr<Feed> feed;
  std::string feeding;  // the worker endpoint of `feed`
  std::string wanted;   // the worker endpoint of the newest plan
  std::string wanted_key;  // and the public key it serves CURVE with (empty: plaintext)
  uint64_t connections = 0;
  while (!g_stop) {
    const auto wait = std::chrono::milliseconds(feed ? 0 : 100);
    for (auto event = client.next_event(wait); event;
         event = client.next_event(std::chrono::milliseconds(0))) {
      const auto& message = **event;
      if (message.which() == coord::Body::SHARD_PLAN) {
        const auto plan = message.body().getShardPlan();
        wanted = plan.getWorkerEndpoint();
        wanted_key = plan.getWorkerCurveKey();
        // Both sides take CURVE from the same [coordinator] keys; a mismatch is a config error
        // (never a silent fall back to plaintext).
        HARVEST_REQUIRE(wanted.empty() || wanted_key.empty() == !options.curve.enabled(), Config,
                        "loader: rank ", plan.getWorkerRank(), "'s data endpoint ", wanted,
                        wanted_key.empty() ? " is plaintext but this loader has CURVE keys"
                                           : " needs CURVE but this loader has no CURVE keys",
                        " (coordinator.curve_*): give every peer of the job the same CURVE settings");
        coord::Progress progress;
        progress.generation = plan.getGeneration();
        progress.state = wanted.empty() ? proto::MemberState::REGISTERED : proto::MemberState::RUNNING;
        client.set_progress(progress);
        if (wanted.empty())
          spdlog::info("loader: plan for generation {} has no worker for this loader yet",
                       plan.getGeneration());
        else if (wanted != feeding)
          spdlog::info("loader: to feed rank {} at {} (generation {})", plan.getWorkerRank(),
                       wanted, plan.getGeneration());
      } else if (message.which() == coord::Body::SHUTDOWN) {
        g_stop = 1;
      }
    }
    // A plan can arrive before the reply that tells this loader its member id (they come from
    // different actors): connect only once the id is known, since the hello must carry it. The
    // same worker again needs no new connection: it re-deals through `start`.
    if (wanted != feeding && (wanted.empty() || client.member_id() != 0)) {
      feed.reset();
      feeding = wanted;
      if (!feeding.empty()) {
        coord::CurveClientKeys curve = options.curve;
        curve.server_public = wanted_key;
        feed = std::make_unique<Feed>(ctx, zmq, feeding,
                                      cat("m", client.member_id(), "-c", ++connections), curve);
        LoaderControlMsg hello;
        hello.member_id = client.member_id();
        feed->send_control(hello);
      }
    }
    if (!feed) continue;
    feed->read_control(/*placed=*/true);
    if (!feed->work(g_stop)) coord::poll_readable({&feed->socket()}, std::chrono::milliseconds(50));
  }
  feed.reset();
  ctx.log_skips("loader");
  client.leave(g_stop ? "stopped by a signal" : "done", /*clean=*/true);
  return 0;
}

}  // namespace harvest::data
