// AdamW with the recipe's parameter groups: weight decay on matrices only — not on biases,
// norms, embeddings (token, position, temporal, class) or the temperature.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "core/config/config.hpp"

namespace harvest {

// True when the recipe applies weight decay to this parameter.
bool uses_weight_decay(const std::string& name, const at::Tensor& param);

struct OptimizerParts {
  std::unique_ptr<torch::optim::AdamW> adamw;
  std::vector<std::string> decay_names;     // group 0
  std::vector<std::string> no_decay_names;  // group 1
};

// Builds AdamW over the trainable parameters (requires_grad) with two groups.
OptimizerParts make_adamw(const std::vector<std::pair<std::string, at::Tensor>>& named_params,
                          const TrainConfig& train);

// Sets the learning rate of every group (the schedule drives it each step).
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace harvest
