#include "coordinator/actor.hpp"

#include <kj/exception.h>
#include <spdlog/spdlog.h>

#include "core/error.hpp"
#include "core/time.hpp"

#include <limits>

namespace harvest::coord {

std::string inbox_endpoint(const std::string& actor) { return "inproc://harvest." + actor; }

Actor::Actor(ZmqContext& ctx, std::string name, std::chrono::milliseconds tick, const std::vector<std::string>& peers)
    : ctx_(ctx), name_(std::move(name)), tick_(tick), inbox_(ctx, ZMQ_PULL, name_) {
  inbox_.set(ZMQ_RCVHWM, 100000);
  inbox_.bind(inbox_endpoint(name_));
  for (const auto& peer : peers) {
    auto out = std::make_unique<ZmqSocket>(ctx, ZMQ_PUSH, peer);
    out->set(ZMQ_SNDHWM, 100000);
    out->connect(inbox_endpoint(peer));
    outboxes_.emplace(peer, std::move(out));
  }
}

Actor::~Actor() { stop(); }

void Actor::start() {
  HARVEST_ASSERT(!thread_.joinable(), "actor ", name_, " started twice");
  thread_ = std::thread([this] { loop(); });
}

void Actor::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Actor::send_to(const std::string& actor, const std::string& bytes) { forward(actor, "@" + name_, bytes); }

void Actor::forward(const std::string& actor, const std::string& from, const std::string& bytes) {
  auto it = outboxes_.find(actor);
  HARVEST_ASSERT(it != outboxes_.end(), "actor ", name_, " has no outbox to ", actor);
  if (!it->second->send({from, bytes}))
    spdlog::warn("{}: inbox of {} is full; dropped a message", name_, actor);
}

void Actor::send_to_peer(const std::string& routing_id, const std::string& bytes) {
  auto it = outboxes_.find(actors::kGateway);
  HARVEST_ASSERT(it != outboxes_.end(), "actor ", name_, " has no outbox to the gateway");
  it->second->send({routing_id, bytes});
}

void Actor::loop() {
  std::vector<ZmqSocket*> sockets{&inbox_};
  for (ZmqSocket* extra : extra_sockets()) sockets.push_back(extra);
  auto next_tick = Clock::now() + tick_;
  try {
    while (!stop_.load()) {
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - Clock::now());
      const auto ready = poll_readable(sockets, std::max(wait, std::chrono::milliseconds(0)));
      if (ready) {
        if (*ready == 0) {
          // Drain a bounded batch so ticks (failure detection) keep their schedule under load.
          for (int i = 0; i < 256; ++i) {
            auto frames = inbox_.recv(std::chrono::milliseconds(0));
            if (!frames) break;
            if (frames->size() != 2) {
              spdlog::error("{}: internal message with {} frames dropped", name_, frames->size());
              continue;
            }
            auto decoded = decode((*frames)[1], std::numeric_limits<size_t>::max());
            if (auto* err = std::get_if<WireError>(&decoded)) {
              spdlog::error("{}: internal message rejected: {}", name_, err->message);
              continue;
            }
            const InMessage& message = *std::get<std::unique_ptr<InMessage>>(decoded);
            try {
              handle((*frames)[0], message);
            } catch (const std::exception& e) {
              spdlog::warn("{}: handling {} failed: {}", name_, body_name(message.which()), e.what());
            } catch (const kj::Exception& e) {
              spdlog::warn("{}: handling {} failed: {}", name_, body_name(message.which()),
                           e.getDescription().cStr());
            }
          }
        } else {
          on_readable(*sockets[*ready]);
        }
      }
      if (Clock::now() >= next_tick) {
        on_tick();
        next_tick = Clock::now() + tick_;
      }
    }
  } catch (const std::exception& e) {
    spdlog::critical("{}: actor loop stopped: {}", name_, e.what());
    healthy_ = false;
  } catch (const kj::Exception& e) {
    spdlog::critical("{}: actor loop stopped: {}", name_, e.getDescription().cStr());
    healthy_ = false;
  }
}

}  // namespace harvest::coord
