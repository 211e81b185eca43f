#include "eval/wise_ft.hpp"

#include <map>

#include "core/error.hpp"

namespace harvest::eval {

namespace {

std::map<std::string, at::Tensor> tensors_of(VideoTextModelImpl& model) {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : model.named_parameters()) out.emplace(p.key(), p.value());
  for (const auto& b : model.named_buffers()) out.emplace(b.key(), b.value());
  return out;
}

}  // namespace

void wise_ft_average(VideoTextModelImpl& trained, VideoTextModelImpl& base, double alpha,
                     const std::string& base_origin) {
  HARVEST_REQUIRE(alpha >= 0.0 && alpha <= 1.0, Usage, "WiSE-FT alpha must be in [0, 1], got ",
                  alpha);
  const auto mine = tensors_of(trained);
  const auto theirs = tensors_of(base);
  std::string problems;
  for (const auto& [name, tensor] : mine) {
    if (name == kWiseFtExcluded) continue;
    const auto it = theirs.find(name);
    if (it == theirs.end())
      problems += "\n  missing " + name;
    else if (it->second.sizes() != tensor.sizes())
      problems += cat("\n  ", name, ": shape ", it->second.sizes(), " in the base, ",
                      tensor.sizes(), " in the trained model");
  }
  HARVEST_REQUIRE(problems.empty(), Usage, base_origin,
                  ": WiSE-FT base does not fit the trained model:", problems);
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : mine) {
    if (name == kWiseFtExcluded) continue;
    at::Tensor t = tensor;
    const at::Tensor other = theirs.at(name).to(t.dtype());
    t.mul_(1.0 - alpha).add_(other, alpha);
  }
}

}  // namespace harvest::eval
