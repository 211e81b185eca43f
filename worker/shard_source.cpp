#include "worker/shard_source.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/error.hpp"
#include "worker/loader_source.hpp"
#include "worker/manifest_source.hpp"

namespace harvest {

data::SamplerState parse_sampler_state(const std::string& json) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
    return data::SamplerState{j.at("epoch").get<uint64_t>(), j.at("cursor").get<uint64_t>()};
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::Runtime, "sampler state '", json,
         "' is not {\"epoch\": E, \"cursor\": C}: ", e.what());
  }
}

BadSampleRate::BadSampleRate(double max_fraction, size_t window)
    : ring_(std::max<size_t>(window, 1), 0), max_fraction_(max_fraction) {}

bool BadSampleRate::exceeded(bool bad) {
  bad_ -= ring_[next_];
  ring_[next_] = bad ? 1 : 0;
  bad_ += ring_[next_];
  next_ = (next_ + 1) % ring_.size();
  seen_ = std::min(seen_ + 1, ring_.size());
  return seen_ == ring_.size() && static_cast<double>(bad_) > max_fraction_ * static_cast<double>(ring_.size());
}

void fail_bad_sample_rate(const std::string& manifest, const BadSampleRate& rate,
                          const std::map<std::string, int64_t>& counts) {
  std::vector<std::pair<int64_t, std::string>> order;
  for (const auto& [reason, n] : counts) order.emplace_back(n, reason);
  std::sort(order.rbegin(), order.rend());
  std::string reasons;
  for (size_t i = 0; i < order.size() && i < 3; ++i)
    reasons += cat(i ? ", " : "", order[i].second, " x", order[i].first);
  fail(ErrorKind::Config, manifest, ": more than ", rate.max_fraction() * 100, " % of the last ", rate.window(),
       " samples were bad (", reasons.empty() ? std::string("no reason recorded") : reasons,
       "); fix the manifest or its videos, or raise data.max_bad_fraction (1 turns the limit off)");
}

std::unique_ptr<ShardSource> make_shard_source(
    const Config& config, std::shared_ptr<const tokenizer::Tokenizer> tokenizer, int rank,
    int world_size, data::SamplerState start, std::shared_ptr<LoaderHub> hub) {
  if (config.data.loaders_per_worker == 0)
    return std::make_unique<ManifestSource>(config, std::move(tokenizer), rank, world_size, start);
  HARVEST_REQUIRE(hub || config.data.loader_placement == "worker", Config,
                  "data.loader_placement = coordinator needs a coordinator to place the loaders: run "
                  "`harvest run` or `harvest worker` (harvest train starts its own loaders; set "
                  "data.loader_placement = worker)");
  LoaderSourceOptions options;
  options.hub = std::move(hub);
  return std::make_unique<LoaderSource>(config, rank, world_size, start, options);
}

}  // namespace harvest
