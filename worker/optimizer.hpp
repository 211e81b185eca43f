// AdamW with the recipe's two parameter groups (weight decay / none).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "core/config/config.hpp"

namespace harvest {

struct OptimizerParts {
  std::unique_ptr<torch::optim::AdamW> adamw;  // a FusedAdamW; group 0: decay, group 1: no decay
};

// AdamW over the trainable (requires_grad) tensors of both groups; which tensor belongs to which
// group is the model's knowledge (VideoTextModel::param_groups()).
OptimizerParts make_adamw(const std::vector<at::Tensor>& decay, const std::vector<at::Tensor>& no_decay,
                          const TrainConfig& train);

// Sets the learning rate of every group (the schedule drives it each step).
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace harvest
