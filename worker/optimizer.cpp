#include "worker/optimizer.hpp"

#include "core/error.hpp"
#include "worker/fused_adamw.hpp"

namespace harvest {

namespace {
std::vector<at::Tensor> trainable(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> out;
  for (const auto& t : tensors)
    if (t.requires_grad()) out.push_back(t);
  return out;
}
}  // namespace

OptimizerParts make_adamw(const std::vector<at::Tensor>& all_decay,
                          const std::vector<at::Tensor>& all_no_decay, const TrainConfig& train) {
  OptimizerParts parts;
  const auto decay = trainable(all_decay);
  const auto no_decay = trainable(all_no_decay);
  HARVEST_REQUIRE(!decay.empty() || !no_decay.empty(), Usage, "optimizer: no trainable parameters");
  auto options = torch::optim::AdamWOptions(train.lr)
                     .betas({train.beta1, train.beta2})
                     .eps(train.eps)
                     .weight_decay(train.weight_decay);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(options));
  auto no_decay_options = std::make_unique<torch::optim::AdamWOptions>(options);
  no_decay_options->weight_decay(0.0);
  groups.emplace_back(no_decay, std::move(no_decay_options));
  parts.adamw = std::make_unique<FusedAdamW>(groups, options);
  return parts;
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

}  // namespace harvest
