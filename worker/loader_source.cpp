#include "worker/loader_source.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "coordinator/zmq_socket.hpp"
#include "core/check_zmq.hpp"
#include "core/error.hpp"
#include "dataloader/manifest.hpp"
#include "worker/loader_hub.hpp"

namespace harvest {
namespace fs = std::filesystem;

namespace {

std::string log_level_name() {
  switch (spdlog::get_level()) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
    case spdlog::level::critical:
      return "error";
    default:
      return "off";
  }
}

std::string describe_exit(int status, const std::string& exe) {
  if (WIFSIGNALED(status)) return cat("was killed by signal ", WTERMSIG(status));
  const int code = WEXITSTATUS(status);
  if (code == 127) return cat("could not be started (exit status 127: cannot execute ", exe, ")");
  return cat("exited with status ", code, " (its error is in the log above)");
}

}  // namespace

LoaderSource::LoaderSource(const Config& config, int rank, int world_size, data::SamplerState start,
                           LoaderSourceOptions options)
    : config_(config),
      options_(std::move(options)),
      rank_(rank),
      world_(world_size),
      dataset_size_(
          data::load_manifest(config.data.train_manifest, config.data.root).entries.size()),
      shape_{static_cast<uint64_t>(config.data.batch_size), config.model.frames,
             config.model.image_size, config.model.image_size, config.model.context_length},
      shadow_(dataset_size_, static_cast<uint64_t>(config.train.seed), world_size, rank, start),
      handed_out_(start),
      hub_(options_.hub),
      unplaced_since_(Clock::now()) {
  HARVEST_REQUIRE(config.data.loaders_per_worker >= 1, Config,
                  "data.loaders_per_worker is 0: LoaderSource needs at least one loader");
  HARVEST_REQUIRE(dataset_size_ >= static_cast<uint64_t>(world_size), Config,
                  config.data.train_manifest, ": ", dataset_size_, " samples cannot feed ",
                  world_size, " workers");
  HARVEST_REQUIRE(!config.model.vocab.empty(), Config,
                  "model.vocab: required (loader processes tokenize captions)");
  if (hub_) return;  // coordinator-placed loaders: dealt on the first next()
  if (options_.exe.empty()) options_.exe = fs::read_symlink("/proc/self/exe").string();
  const fs::path dir = options_.socket_dir.empty() ? fs::path(config.logging.run_dir) / "loaders"
                                                   : fs::path(options_.socket_dir);
  fs::create_directories(dir);
  const std::string tag = cat("r", rank, "-", ::getpid());
  config_path_ = (dir / (tag + ".toml")).string();
  {
    std::ofstream out(config_path_);
    out << to_toml(config);
    HARVEST_REQUIRE(out.good(), Runtime, "cannot write the loaders' config ", config_path_);
  }
  ctx_ = std::make_unique<coord::ZmqContext>();
  const auto count = static_cast<int>(config.data.loaders_per_worker);
  loaders_.resize(static_cast<size_t>(count));
  for (int k = 0; k < count; ++k) {
    Loader& l = loaders_[static_cast<size_t>(k)];
    l.index = k;
    const std::string path = (dir / cat(tag, "-l", k, ".sock")).string();
    // sockaddr_un holds 107 bytes of path.
    HARVEST_REQUIRE(path.size() <= 107, Config, "logging.run_dir: the loader socket path ", path,
                    " is ", path.size(),
                    " bytes, over the 107 an ipc:// endpoint allows; use a "
                    "shorter run_dir");
    l.endpoint = "ipc://" + path;
    l.own_socket = std::make_unique<coord::ZmqSocket>(*ctx_, ZMQ_ROUTER, l.endpoint);
    l.socket = l.own_socket.get();
    l.socket->set(ZMQ_ROUTER_MANDATORY, 1);
    l.socket->set(ZMQ_RCVHWM, static_cast<int>(config.data.queue_depth) + 2);
    // A loader cannot make this worker buffer more than a batch per message part.
    l.socket->set(ZMQ_MAXMSGSIZE,
                  static_cast<int64_t>(shape_.span * shape_.clip_bytes()) + (int64_t{1} << 20));
    l.socket->bind(l.endpoint);
    l.next_expected = static_cast<uint64_t>(k);
  }
  for (Loader& l : loaders_) spawn(l);
}

LoaderSource::~LoaderSource() {
  if (hub_) {
    // The loaders belong to the coordinator; the next source re-deals them (new incarnations).
    received_.clear();
    return;
  }
  for (Loader& l : loaders_)
    if (l.pid > 0) ::kill(l.pid, SIGTERM);
  const auto give_up = Clock::now() + std::chrono::seconds(2);
  for (Loader& l : loaders_) {
    while (l.pid > 0) {
      int status = 0;
      const pid_t r = ::waitpid(l.pid, &status, WNOHANG);
      if (r == l.pid || (r < 0 && errno != EINTR)) {
        l.pid = -1;
      } else if (Clock::now() >= give_up) {
        ::kill(l.pid, SIGKILL);
        ::waitpid(l.pid, &status, 0);
        l.pid = -1;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  received_.clear();
  for (Loader& l : loaders_) {
    l.own_socket.reset();
    std::error_code ec;
    fs::remove(l.endpoint.substr(6), ec);
  }
  ctx_.reset();
  std::error_code ec;
  fs::remove(config_path_, ec);
}

std::string LoaderSource::peer(const Loader& l) const {
  if (hub_) return cat("loader member ", l.member_id, " (feeding ", hub_->endpoint(), ")");
  return cat("loader ", l.index, " (pid ", l.pid, ", ", l.endpoint, ")");
}

std::string LoaderSource::endpoint(int loader) const {
  return loaders_.at(static_cast<size_t>(loader)).endpoint;
}

std::vector<pid_t> LoaderSource::loader_pids() const {
  std::vector<pid_t> pids;
  for (const Loader& l : loaders_) pids.push_back(l.pid);
  return pids;
}

data::SamplerState LoaderSource::position_of(uint64_t global_index) const {
  const uint64_t first = global_index * shape_.span;
  HARVEST_ASSERT(first >= consumed_, "batch ", global_index, " starts before the ", consumed_,
                 " positions already handed out");
  data::EpochSampler ahead = shadow_;
  ahead.skip(first - consumed_);
  return ahead.state();
}

void LoaderSource::spawn(Loader& l) {
  l.generation = ++generations_;
  l.identity.clear();
  l.last_heard = Clock::now();
  const data::SamplerState start = position_of(l.next_expected);
  std::vector<std::string> args = {options_.exe,     "--log-level",
                                   log_level_name(), "loader",
                                   "--config",       config_path_,
                                   "--rank",         std::to_string(rank_),
                                   "--world-size",   std::to_string(world_),
                                   "--index",        std::to_string(l.index),
                                   "--count",        std::to_string(loaders_.size()),
                                   "--endpoint",     l.endpoint,
                                   "--generation",   std::to_string(l.generation),
                                   "--epoch",        std::to_string(start.epoch),
                                   "--cursor",       std::to_string(start.cursor),
                                   "--first-batch",  std::to_string(l.next_expected)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  HARVEST_REQUIRE(pid >= 0, Runtime, "fork for loader ", l.index,
                  " failed: ", std::strerror(errno));
  if (pid == 0) {
    // Only async-signal-safe calls until exec. A loader never outlives its worker.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // a worker blocks SIGINT/SIGTERM; its loaders must not
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  l.pid = pid;
  spdlog::debug("started loader {} (pid {}, generation {}) at batch {}, epoch {} cursor {}",
                l.index, pid, l.generation, l.next_expected, start.epoch, start.cursor);
}

void LoaderSource::restart(Loader& l, const std::string& why, bool reaped) {
  const std::string who = peer(l);
  if (!reaped && l.pid > 0) {
    ::kill(l.pid, SIGKILL);
    int status = 0;
    while (::waitpid(l.pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  l.pid = -1;
  // Whole batches it sent before dying still count; anything later is dropped as stale.
  pump(std::chrono::milliseconds(0), &l);
  ++l.failures;
  ++restarts_;
  HARVEST_REQUIRE(l.failures <= config_.data.loader_max_restarts, Runtime, who, " ", why,
                  "; it was restarted ", l.failures - 1,
                  " times in a row without a batch from it (data.loader_max_restarts = ",
                  config_.data.loader_max_restarts, "); giving up at batch ", l.next_expected);
  spdlog::warn("{} {}; restarting it at batch {}", who, why, l.next_expected);
  spawn(l);
}

void LoaderSource::send_credit(Loader& l, uint32_t credit) {
  if (l.identity.empty() || credit == 0) return;
  data::LoaderControlMsg msg;
  msg.kind = data::LoaderControlMsg::Kind::Credit;
  msg.generation = l.generation;
  msg.loader_index = static_cast<uint32_t>(l.index);
  msg.credit = credit;
  send_control(l, msg);
}

void LoaderSource::send_control(Loader& l, const data::LoaderControlMsg& msg) {
  data::ZmqMessage to(l.identity.data(), l.identity.size());
  data::ZmqMessage body = data::encode_control(msg);
  void* sock = l.socket->get();
  if (zmq_msg_send(to.get(), sock, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
    const int err = zmq_errno();
    // Gone (or going): its replacement's hello is answered with the full credit.
    if (err == EHOSTUNREACH || err == EAGAIN) return;
    check_zmq(-1, "zmq_msg_send", peer(l));
  }
  check_zmq(zmq_msg_send(body.get(), sock, 0), "zmq_msg_send", peer(l));
}

void LoaderSource::pump(std::chrono::milliseconds wait, Loader* only) {
  if (hub_) return pump_hub(wait);
  std::vector<coord::ZmqSocket*> sockets;
  std::vector<Loader*> owners;
  for (Loader& l : loaders_) {
    if (only && only != &l) continue;
    sockets.push_back(l.socket);
    owners.push_back(&l);
  }
  if (wait.count() > 0 && !coord::poll_readable(sockets, wait)) return;
  for (Loader* l : owners)
    while (auto parts = data::recv_parts(l->socket->get(), peer(*l))) handle(*l, std::move(*parts));
}

void LoaderSource::handle(Loader& l, std::vector<std::shared_ptr<data::ZmqMessage>> parts) {
  const std::string who = peer(l);
  HARVEST_ASSERT(!parts.empty(), "ROUTER message without a routing id");
  const std::string identity(reinterpret_cast<const char*>(parts[0]->data()), parts[0]->size());
  parts.erase(parts.begin());
  if (parts.size() == 1) {
    const data::LoaderControlMsg msg = data::decode_control(*parts[0], who);
    HARVEST_REQUIRE(msg.kind == data::LoaderControlMsg::Kind::Hello, Runtime, who,
                    ": sent credit; only workers grant credit");
    HARVEST_REQUIRE(msg.loader_index == static_cast<uint32_t>(l.index), Runtime, who,
                    ": hello names loader ", msg.loader_index);
    HARVEST_REQUIRE(msg.generation <= l.generation, Runtime, who, ": hello from generation ",
                    msg.generation, ", which was never started (current ", l.generation, ")");
    if (msg.generation < l.generation) return;  // an older incarnation, already replaced
    l.identity = identity;
    l.last_heard = Clock::now();
    send_credit(l, static_cast<uint32_t>(config_.data.queue_depth - l.queued));
    return;
  }
  data::WireBatch batch = data::decode_batch(std::move(parts), shape_, who);
  HARVEST_REQUIRE(batch.generation <= l.generation, Runtime, who, ": batch ", batch.global_index,
                  " from generation ", batch.generation, ", which was never started (current ",
                  l.generation, ")");
  if (batch.generation < l.generation) {
    spdlog::debug("{}: dropping batch {} of replaced generation {}", who, batch.global_index,
                  batch.generation);
    return;
  }
  HARVEST_REQUIRE(batch.loader_index == static_cast<uint32_t>(l.index), Runtime, who, ": batch ",
                  batch.global_index, " claims to come from loader ", batch.loader_index);
  HARVEST_REQUIRE(batch.global_index == l.next_expected, Runtime, who, ": batch ",
                  batch.global_index, " arrived where batch ", l.next_expected, " was expected (",
                  batch.global_index < l.next_expected ? "a duplicate" : "a gap", ")");
  HARVEST_REQUIRE(
      l.queued < config_.data.queue_depth, Runtime, who, ": batch ", batch.global_index,
      " sent without credit (", l.queued,
      " of its batches are already queued; data.queue_depth = ", config_.data.queue_depth, ")");
  // Its span of this rank's shard, checked now so a confused loader is named at once.
  data::EpochSampler at = shadow_;
  at.skip(batch.global_index * shape_.span - consumed_);
  const data::SamplerState start = at.state();
  HARVEST_REQUIRE(batch.epoch == start.epoch && batch.cursor == start.cursor, Runtime, who,
                  ": batch ", batch.global_index, " starts at epoch ", batch.epoch, " cursor ",
                  batch.cursor, ", expected epoch ", start.epoch, " cursor ", start.cursor,
                  " (does it read the same manifest and seed?)");
  for (size_t pos = 0; pos < batch.slots.size(); ++pos) {
    const uint64_t expected = at.next_wrapping();
    HARVEST_REQUIRE(batch.slots[pos].sample_id == expected, Runtime, who, ": batch ",
                    batch.global_index, " position ", pos, " holds sample ",
                    batch.slots[pos].sample_id, ", the shard says ", expected,
                    " (does it read the same manifest and seed?)");
  }
  l.next_expected += loaders_.size();
  l.failures = 0;
  l.last_heard = Clock::now();
  peak_queued_ = std::max(peak_queued_, ++l.queued);
  received_.emplace(batch.global_index, std::move(batch));
}

LoaderSource::Loader& LoaderSource::loader_for(uint64_t global_index) {
  HARVEST_ASSERT(!loaders_.empty() && global_index >= deal_base_, "no loader builds batch ",
                 global_index);
  return loaders_[(global_index - deal_base_) % loaders_.size()];
}

const data::WireBatch& LoaderSource::await(uint64_t global_index) {
  const auto timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(config_.data.loader_timeout_s));
  auto waiting_since = Clock::now();
  if (hub_) {
    for (;;) {
      if (auto it = received_.find(global_index); it != received_.end()) return it->second;
      HARVEST_REQUIRE(!hub_->aborted(hub_->generation()), Runtime, "rank ", rank_,
                      ": generation ", hub_->generation(), " was aborted while batch ",
                      global_index, " was awaited");
      follow_plan();
      const auto now = Clock::now();
      if (loaders_.empty()) {
        HARVEST_REQUIRE(
            now - unplaced_since_ < timeout, Runtime, "rank ", rank_,
            ": no loader feeds this worker: the coordinator's shard plan for generation ",
            hub_->generation(), " lists none that answered for ", config_.data.loader_timeout_s,
            " s (data.loader_timeout_s). With data.loader_placement = coordinator, start "
            "data.loaders_per_worker x dist.world_size `harvest loader --config X` processes "
            "(harvest run does); the coordinator deals them round-robin over the ranks");
        pump_hub(std::chrono::milliseconds(100));
        continue;
      }
      Loader& l = loader_for(global_index);
      const auto deadline = std::max(waiting_since, l.last_heard) + timeout;
      if (now >= deadline) {
        const std::string why =
            cat(peer(l), " sent nothing for ", config_.data.loader_timeout_s,
                " s (data.loader_timeout_s) while batch ", global_index, " was awaited");
        spdlog::warn("{}; dealing its batches to the others", why);
        excluded_.insert(l.member_id);
        std::vector<uint64_t> rest;
        for (const Loader& o : loaders_)
          if (!excluded_.count(o.member_id)) rest.push_back(o.member_id);
        deal(std::move(rest), why);
        waiting_since = Clock::now();
        continue;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      pump_hub(std::min(left + std::chrono::milliseconds(1), std::chrono::milliseconds(100)));
    }
  }
  Loader& l = loader_for(global_index);
  for (;;) {
    if (auto it = received_.find(global_index); it != received_.end()) return it->second;
    int status = 0;
    if (l.pid > 0 && ::waitpid(l.pid, &status, WNOHANG) == l.pid) {
      restart(l, describe_exit(status, options_.exe), true);
      waiting_since = Clock::now();
      continue;
    }
    const auto deadline = std::max(waiting_since, l.last_heard) + timeout;
    const auto now = Clock::now();
    if (now >= deadline) {
      restart(l,
              cat("sent nothing for ", config_.data.loader_timeout_s,
                  " s (data.loader_timeout_s) while batch ", global_index, " was awaited"),
              false);
      waiting_since = Clock::now();
      continue;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    pump(std::min(left + std::chrono::milliseconds(1), std::chrono::milliseconds(100)));
  }
}

void LoaderSource::release(uint64_t global_index) {
  if (hub_) {
    // Credit goes back to the incarnation that sent the batch, if it is still the current one.
    auto it = received_.find(global_index);
    const uint64_t incarnation = it->second.generation;
    received_.erase(it);
    for (Loader& l : loaders_) {
      if (l.generation != incarnation) continue;
      --l.queued;
      send_credit(l, 1);
      break;
    }
    return;
  }
  received_.erase(global_index);
  Loader& l = loaders_[global_index % loaders_.size()];
  --l.queued;
  send_credit(l, 1);
}

HostBatch LoaderSource::next() {
  const int64_t batch = config_.data.batch_size, frames = config_.model.frames;
  const int64_t side = config_.model.image_size, context = config_.model.context_length;
  const size_t clip_bytes = shape_.clip_bytes();
  HostBatch out;
  int64_t filled = 0;
  auto check_id = [&](const data::WireBatch& w, size_t pos) {
    // handle() checked every id on arrival; the shadow sampler walks along for state().
    const uint64_t expected = shadow_.next_wrapping();
    HARVEST_ASSERT(w.slots[pos].sample_id == expected, "batch ", w.global_index, " position ", pos,
                   " changed after it was checked");
    ++consumed_;
  };
  auto tokens_of = [&](const data::WireBatch& w, int64_t row, at::Tensor dest) {
    // int32 little-endian, not necessarily aligned in the message.
    std::vector<int32_t> ids(static_cast<size_t>(context));
    std::memcpy(ids.data(), w.tokens->data() + static_cast<size_t>(row * context) * sizeof(int32_t),
                ids.size() * sizeof(int32_t));
    auto* d = dest.data_ptr<int64_t>();
    for (int64_t i = 0; i < context; ++i) d[i] = ids[static_cast<size_t>(i)];
  };
  while (filled < batch) {
    const uint64_t g = consumed_ / shape_.span;
    size_t pos = consumed_ % shape_.span;
    const data::WireBatch& w = await(g);
    if (filled == 0 && pos == 0 && w.rows == batch) {
      // The common case: the loader's batch is the training batch. Wrap its frames without a copy.
      for (size_t i = 0; i < shape_.span; ++i) check_id(w, i);
      auto holder = w.frames;
      out.video = at::from_blob(
          const_cast<uint8_t*>(holder->data()), {batch, frames, side, side, 3}, [holder](void*) {},
          at::kByte);
      out.text = at::empty({batch, context}, at::kLong);
      for (int64_t r = 0; r < batch; ++r) tokens_of(w, r, out.text[r]);
      for (const auto& s : w.slots) out.sample_ids.push_back(static_cast<int64_t>(s.sample_id));
      handed_out_ = shadow_.state();
      release(g);
      return out;
    }
    if (!out.video.defined()) {
      out.video = at::empty({batch, frames, side, side, 3}, at::kByte);
      out.text = at::zeros({batch, context}, at::kLong);
    }
    // Stitch: a bad sample shifted training batches against loader batches.
    for (; pos < shape_.span && filled < batch; ++pos) {
      check_id(w, pos);
      handed_out_ = shadow_.state();
      const data::SlotOnWire& s = w.slots[pos];
      if (s.row < 0) ++bad_[s.reason];
      if (bad_rate_.exceeded(s.row < 0)) fail_bad_sample_rate(config_.data.train_manifest, bad_rate_, bad_);
      if (s.row < 0) {
        ++out.bad_samples;
        continue;
      }
      std::memcpy(out.video[filled].data_ptr(),
                  w.frames->data() + static_cast<size_t>(s.row) * clip_bytes, clip_bytes);
      tokens_of(w, s.row, out.text[filled]);
      out.sample_ids.push_back(static_cast<int64_t>(s.sample_id));
      ++filled;
    }
    if (pos == shape_.span) release(g);
  }
  return out;
}

std::string LoaderSource::state() const {
  return nlohmann::json{{"epoch", handed_out_.epoch}, {"cursor", handed_out_.cursor}}.dump();
}

}  // namespace harvest

namespace harvest {

// Coordinator-placed loaders (data.loader_placement = coordinator).

void LoaderSource::follow_plan() {
  const LoaderHub::Plan plan = hub_->plan();
  // A plan for another generation: an older one, or the next one before this worker is aborted.
  if (plan.version == plan_version_ || plan.generation != hub_->generation()) return;
  plan_version_ = plan.version;
  std::vector<uint64_t> members;
  for (const uint64_t id : plan.loaders)
    if (!excluded_.count(id)) members.push_back(id);
  std::vector<uint64_t> current;
  for (const Loader& l : loaders_) current.push_back(l.member_id);
  if (dealt_ && members == current) return;
  deal(std::move(members), dealt_ ? "the coordinator's shard plan changed" : "the coordinator's shard plan");
}

void LoaderSource::deal(std::vector<uint64_t> members, const std::string& why) {
  // From the first batch not received yet; later ones that did arrive are built again.
  uint64_t first = consumed_ / shape_.span;
  while (received_.count(first)) ++first;
  for (auto it = received_.upper_bound(first); it != received_.end();) it = received_.erase(it);
  deal_base_ = first;
  const auto now = Clock::now();
  loaders_.clear();
  for (size_t j = 0; j < members.size(); ++j) {
    Loader l;
    l.index = static_cast<int>(j);
    l.member_id = members[j];
    l.endpoint = hub_->endpoint();
    l.socket = &hub_->socket();
    l.generation = hub_->next_incarnation();
    l.next_expected = first + j;
    l.last_heard = now;
    if (auto it = hub_->hellos().find(l.member_id); it != hub_->hellos().end())
      l.identity = it->second;
    loaders_.push_back(std::move(l));
  }
  for (Loader& l : loaders_)
    if (!l.identity.empty()) send_start(l);
  dealt_ = true;
  if (loaders_.empty()) unplaced_since_ = now;
  spdlog::info("rank {}: {} loader(s) placed by the coordinator build batches from {} on ({})",
               rank_, loaders_.size(), first, why);
}

void LoaderSource::send_start(Loader& l) {
  const data::SamplerState at = position_of(l.next_expected);
  data::LoaderControlMsg msg;
  msg.kind = data::LoaderControlMsg::Kind::Start;
  msg.generation = l.generation;
  msg.loader_index = static_cast<uint32_t>(l.index);
  msg.start = {rank_, static_cast<uint32_t>(world_), static_cast<uint32_t>(loaders_.size()),
               l.next_expected, at.epoch, at.cursor};
  send_control(l, msg);
  send_credit(l, static_cast<uint32_t>(config_.data.queue_depth - l.queued));
  spdlog::debug("{}: start incarnation {} at batch {} (epoch {} cursor {})", peer(l), l.generation,
                l.next_expected, at.epoch, at.cursor);
}

void LoaderSource::pump_hub(std::chrono::milliseconds wait) {
  coord::ZmqSocket* socket = &hub_->socket();
  if (wait.count() > 0 && !coord::poll_readable({socket}, wait)) return;
  const std::string who = cat("loader hub ", hub_->endpoint());
  while (auto parts = data::recv_parts(socket->get(), who)) handle_hub(std::move(*parts));
}

void LoaderSource::log_ignored(const std::string& what) {
  ++ignored_;
  if (ignored_ <= 10)
    spdlog::warn("{}; ignored", what);
  else if (ignored_ % 1000 == 0)
    spdlog::warn("loader hub {}: {} messages ignored so far (the last: {})", hub_->endpoint(),
                 ignored_, what);
}

void LoaderSource::handle_hub(std::vector<std::shared_ptr<data::ZmqMessage>> parts) {
  HARVEST_ASSERT(!parts.empty(), "ROUTER message without a routing id");
  const std::string identity(reinterpret_cast<const char*>(parts[0]->data()), parts[0]->size());
  if (parts.size() == 2) {
    // Anyone can reach a TCP port: what is not a placed loader's hello is ignored, not fatal.
    const std::string who = cat("peer '", identity, "' of loader hub ", hub_->endpoint());
    data::LoaderControlMsg msg;
    try {
      msg = data::decode_control(*parts[1], who);
    } catch (const Error& e) {
      return log_ignored(e.what());
    }
    if (msg.kind != data::LoaderControlMsg::Kind::Hello || msg.member_id == 0)
      return log_ignored(cat(who, ": sent a control message that is not a placed loader's hello"));
    hub_->hellos()[msg.member_id] = identity;
    for (Loader& l : loaders_) {
      if (l.member_id != msg.member_id || l.identity == identity) continue;
      if (!l.identity.empty()) {
        // It started over (a new connection): what it had in progress is gone.
        std::vector<uint64_t> members;
        for (const Loader& o : loaders_) members.push_back(o.member_id);
        deal(std::move(members), cat(peer(l), " connected again"));
        return;
      }
      l.identity = identity;
      l.last_heard = Clock::now();
      send_start(l);
      return;
    }
    return;  // not (yet) in this worker's plan: remembered for the deal that includes it
  }
  for (Loader& l : loaders_)
    if (l.identity == identity) return handle(l, std::move(parts));
  spdlog::debug("loader hub {}: dropping a batch from '{}', which is not in the current deal",
                hub_->endpoint(), identity);
}

}  // namespace harvest
