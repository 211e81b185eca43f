// A worker in miniature for the collective tests: trains a small MLP data-parallel with the real
// GradientReducer, AdamW groups and schedule over a real CommGroup (local or Gloo), and writes
// the final parameters (raw float32, in parameter order) and a JSON summary line.
//   ddp_probe --rank R --world W --port P --steps K --global-batch B --out FILE
//             [--bucket-mb X] [--nan-step S --nan-rank R] [--hang-rank R] [--deadline-s D]
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "core/config/config.hpp"
#include "worker/comm_group.hpp"
#include "worker/grad_reducer.hpp"
#include "worker/lr_schedule.hpp"
#include "worker/optimizer.hpp"
#include "tests/worker/probe_args.hpp"

using namespace harvest;

struct Mlp : torch::nn::Module {
  Mlp() {
    fc1 = register_module("fc1", torch::nn::Linear(16, 32));
    fc2 = register_module("fc2", torch::nn::Linear(32, 8));
    unused = register_parameter("unused_weight", torch::ones({4, 4}));
    embedding = register_parameter("token_embedding", torch::randn({8}) * 0.1);
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(torch::tanh(fc1(x))) + embedding; }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::Tensor unused, embedding;
};

int main(int argc, char** argv) {
  const test::ProbeArgs args(argc, argv);
  auto get = [&](const std::string& k, const std::string& def) { return args.get(k, def); };
  const int rank = args.rank();
  const int world = args.world();
  const int steps = std::stoi(get("--steps", "5"));
  const int global_batch = std::stoi(get("--global-batch", "8"));
  const int nan_step = std::stoi(get("--nan-step", "-1"));
  const int nan_rank = std::stoi(get("--nan-rank", "-1"));
  const int hang_rank = std::stoi(get("--hang-rank", "-1"));
  const double deadline_s = std::stod(get("--deadline-s", "30"));
  at::set_num_threads(1);
  torch::manual_seed(1234);  // same initial weights on every rank

  try {
    const std::unique_ptr<CommGroup> group = args.make_group(/*timeout_s=*/30);
    Mlp model;
    std::vector<std::pair<std::string, at::Tensor>> named;
    for (const auto& p : model.named_parameters()) named.emplace_back(p.key(), p.value());
    TrainConfig train;
    train.lr = 0.05;
    train.weight_decay = 0.1;
    std::vector<at::Tensor> decay, no_decay;  // matrices decay; vectors (biases, embedding) don't
    for (const auto& [name, p] : named) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    auto opt = make_adamw(decay, no_decay, train);
    GradientReducer reducer(named, *group, std::stod(get("--bucket-mb", "25")));
    const CosineSchedule schedule(train.lr, 0.01, 2, steps);

    std::vector<int> skipped;
    int started_in_backward = 0;
    const int local = global_batch / world;
    for (int step = 0; step < steps; ++step) {
      auto gen = at::detail::createCPUGenerator(1000 + step);
      const auto x = at::randn({global_batch, 16}, gen).narrow(0, rank * local, local);
      const auto y = at::randn({global_batch, 8}, gen).narrow(0, rank * local, local);
      reducer.zero_grad();
      reducer.prepare(true);
      auto loss = torch::mse_loss(model.forward(x), y);
      if (step == nan_step && rank == nan_rank) loss = loss * std::nan("");
      loss.backward();
      if (rank == hang_rank) std::this_thread::sleep_for(std::chrono::seconds(600));
      const auto timings = reducer.finish(Deadline::after_seconds(deadline_s));
      started_in_backward += timings.buckets_started_in_backward;
      // Gradients are identical on every rank after the all-reduce, so this check agrees.
      bool finite = true;
      for (const auto& [name, p] : named) finite = finite && torch::isfinite(p.grad()).all().item<bool>();
      if (!finite) {
        skipped.push_back(step);
        continue;
      }
      set_learning_rate(*opt.adamw, schedule.lr(step));
      opt.adamw->step();
    }
    std::ofstream out(get("--out", "/dev/null"), std::ios::binary);
    for (const auto& [name, p] : named) {
      const auto c = p.detach().contiguous();
      out.write(static_cast<const char*>(c.data_ptr()), c.numel() * sizeof(float));
    }
    std::cout << "{\"rank\": " << rank << ", \"buckets\": " << reducer.bucket_count()
              << ", \"started_in_backward\": " << started_in_backward << ", \"skipped\": [";
    for (size_t i = 0; i < skipped.size(); ++i) std::cout << (i ? ", " : "") << skipped[i];
    std::cout << "]}" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "ddp_probe rank " << rank << ": " << e.what() << std::endl;
    return 1;
  }
}
