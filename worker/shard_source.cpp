#include "worker/shard_source.hpp"

#include <nlohmann/json.hpp>

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
