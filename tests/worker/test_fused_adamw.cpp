#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <vector>

#include "worker/fused_adamw.hpp"

using harvest::FusedAdamW;

namespace {

// Parameters of every kind the optimizer meets: large float (several chunks), small float, a
// non-contiguous float view, a double (the multi-tensor path), and one that never gets a gradient.
std::vector<at::Tensor> make_params(uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<at::Tensor> p;
  p.push_back(torch::randn({300, 350}));  // 105,000 elements: 4 chunks
  p.push_back(torch::randn({7}));
  p.push_back(torch::randn({6, 5}).t());  // non-contiguous leaf
  p.push_back(torch::randn({4, 3}, torch::kDouble));
  p.push_back(torch::randn({5}));  // no gradient: skipped, no state
  for (auto& t : p) t.requires_grad_(true);
  return p;
}

std::vector<torch::optim::OptimizerParamGroup> groups_of(const std::vector<at::Tensor>& p) {
  auto decay = std::make_unique<torch::optim::AdamWOptions>(
      torch::optim::AdamWOptions(3e-2).betas({0.9, 0.98}).eps(1e-6).weight_decay(0.2));
  auto no_decay = std::make_unique<torch::optim::AdamWOptions>(
      torch::optim::AdamWOptions(3e-2).betas({0.9, 0.98}).eps(1e-6).weight_decay(0.0));
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<at::Tensor>{p[0], p[2], p[3]}, std::move(decay));
  groups.emplace_back(std::vector<at::Tensor>{p[1], p[4]}, std::move(no_decay));
  return groups;
}

// Gradients for step `s` (the same for every optimizer); p[1] skips step 1 so that its step
// count, and so its bias correction, differs from the others'.
void set_grads(std::vector<at::Tensor>& p, int s) {
  torch::manual_seed(1000 + s);
  for (size_t i = 0; i < 4; ++i) {
    at::Tensor g = torch::randn(p[i].sizes(), p[i].options().requires_grad(false));
    if (i == 1 && s == 1) g = at::Tensor();
    p[i].mutable_grad() = g;
  }
}

void run(torch::optim::AdamW& opt, std::vector<at::Tensor>& p, int steps) {
  for (int s = 0; s < steps; ++s) {
    set_grads(p, s);
    opt.step();
  }
}

}  // namespace

TEST_CASE("FusedAdamW matches LibTorch AdamW on every parameter kind", "[worker][optim]") {
  auto expected = make_params(7);
  auto actual = make_params(7);
  torch::optim::AdamW reference(groups_of(expected), torch::optim::AdamWOptions(3e-2));
  FusedAdamW fused(groups_of(actual), torch::optim::AdamWOptions(3e-2));
  run(reference, expected, 6);
  run(fused, actual, 6);
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("parameter " << i);
    CHECK(torch::allclose(actual[i], expected[i], 1e-5, 1e-6));
    CHECK(!torch::equal(actual[i], make_params(7)[i]) ==
          (i != 4));  // moved, except the gradient-less one
  }
  // The state sits where LibTorch (and harvest's checkpoint code) looks for it.
  for (size_t i = 0; i < 4; ++i) {
    INFO("parameter " << i);
    const auto key = actual[i].unsafeGetTensorImpl();
    REQUIRE(fused.state().count(key) == 1);
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*fused.state().at(key));
    const auto& r = static_cast<const torch::optim::AdamWParamState&>(
        *reference.state().at(expected[i].unsafeGetTensorImpl()));
    CHECK(s.step() == r.step());
    CHECK(torch::allclose(s.exp_avg(), r.exp_avg(), 1e-5, 1e-7));
    CHECK(torch::allclose(s.exp_avg_sq(), r.exp_avg_sq(), 1e-5, 1e-9));
  }
  CHECK(fused.state().count(actual[4].unsafeGetTensorImpl()) == 0);
  CHECK(static_cast<const torch::optim::AdamWParamState&>(
            *fused.state().at(actual[1].unsafeGetTensorImpl()))
            .step() == 5);
}

TEST_CASE("FusedAdamW gives bitwise the same parameters with 1 and 2 threads", "[worker][optim]") {
  const int threads = at::get_num_threads();
  std::vector<std::vector<at::Tensor>> results;
  for (const int n : {1, 2}) {
    at::set_num_threads(n);
    auto p = make_params(11);
    FusedAdamW fused(groups_of(p), torch::optim::AdamWOptions(3e-2));
    run(fused, p, 4);
    results.push_back(p);
  }
  at::set_num_threads(threads);
  for (size_t i = 0; i < results[0].size(); ++i) CHECK(torch::equal(results[0][i], results[1][i]));
}

TEST_CASE("FusedAdamW resumes from state it did not create", "[worker][optim]") {
  // Three steps, then a fresh optimizer given the state (as a checkpoint restore does), then three
  // more, equals six steps in one go.
  auto straight = make_params(3);
  FusedAdamW one(groups_of(straight), torch::optim::AdamWOptions(3e-2));
  run(one, straight, 6);

  auto resumed = make_params(3);
  FusedAdamW first(groups_of(resumed), torch::optim::AdamWOptions(3e-2));
  for (int s = 0; s < 3; ++s) {
    set_grads(resumed, s);
    first.step();
  }
  FusedAdamW second(groups_of(resumed), torch::optim::AdamWOptions(3e-2));
  for (auto& [key, state] : first.state()) second.state()[key] = state->clone();
  for (int s = 3; s < 6; ++s) {
    set_grads(resumed, s);
    second.step();
  }
  for (size_t i = 0; i < straight.size(); ++i) CHECK(torch::equal(straight[i], resumed[i]));
}
