#include "worker/optimizer.hpp"

#include "core/error.hpp"

namespace harvest {

bool uses_weight_decay(const std::string& name, const at::Tensor& param) {
  if (param.dim() < 2) return false;  // biases, norm weights, scalars (logit_scale)
  for (const char* word : {"embedding", "class_embedding", "positional", "logit_scale", "temporal"})
    if (name.find(word) != std::string::npos) return false;
  return true;
}

OptimizerParts make_adamw(const std::vector<std::pair<std::string, at::Tensor>>& named_params,
                          const TrainConfig& train) {
  OptimizerParts parts;
  std::vector<at::Tensor> decay, no_decay;
  for (const auto& [name, p] : named_params) {
    if (!p.requires_grad()) continue;
    if (uses_weight_decay(name, p)) {
      decay.push_back(p);
      parts.decay_names.push_back(name);
    } else {
      no_decay.push_back(p);
      parts.no_decay_names.push_back(name);
    }
  }
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
  parts.adamw = std::make_unique<torch::optim::AdamW>(groups, options);
  return parts;
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

}  // namespace harvest
