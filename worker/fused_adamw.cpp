#include "worker/fused_adamw.hpp"

#include <ATen/Parallel.h>

#include <cmath>
#include <memory>


namespace harvest {
namespace {

// The per-parameter constants of one update, in float as ATen uses them for float tensors.
struct UpdateScalars {
  float decay_factor;  // 1 - lr * wd
  float beta1, one_minus_beta1;
  float beta2, one_minus_beta2;
  float sqrt_bias_correction2;
  float eps;
  float step_size;  // lr / (1 - beta1^t)
};

UpdateScalars scalars_for(const torch::optim::AdamWOptions& o, int64_t step) {
  const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
  const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(step));
  return {static_cast<float>(1 - o.lr() * o.weight_decay()),
          static_cast<float>(beta1),
          static_cast<float>(1 - beta1),
          static_cast<float>(beta2),
          static_cast<float>(1 - beta2),
          static_cast<float>(std::sqrt(bias_correction2)),
          static_cast<float>(o.eps()),
          static_cast<float>(o.lr() / bias_correction1)};
}

// Elements [begin, end) of one float32 parameter: a single read/write pass over p, m, v.
// Built for AVX2+FMA where the CPU has it (the loop vectorises), plain x86-64 otherwise.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=haswell", "default")))
#endif
void update_range(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                  int64_t begin, int64_t end, UpdateScalars s) {
  for (int64_t i = begin; i < end; ++i) {
    const float grad = g[i];
    const float param = p[i] * s.decay_factor;
    const float avg = m[i] * s.beta1 + grad * s.one_minus_beta1;
    const float avg_sq = v[i] * s.beta2 + grad * grad * s.one_minus_beta2;
    const float denom = std::sqrt(avg_sq) / s.sqrt_bias_correction2 + s.eps;
    m[i] = avg;
    v[i] = avg_sq;
    p[i] = param - s.step_size * (avg / denom);
  }
}

struct FusedJob {
  float* p;
  const float* g;
  float* m;
  float* v;
  int64_t numel;
  UpdateScalars s;
};

// Every job's elements in chunks, the chunks of all parameters spread over the intra-op threads.
void run_fused(const std::vector<FusedJob>& jobs) {
  constexpr int64_t kChunk = 1 << 15;
  struct Chunk {
    size_t job;
    int64_t begin, end;
  };
  std::vector<Chunk> chunks;
  for (size_t j = 0; j < jobs.size(); ++j)
    for (int64_t b = 0; b < jobs[j].numel; b += kChunk)
      chunks.push_back({j, b, std::min(jobs[j].numel, b + kChunk)});
  at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t first, int64_t last) {
    for (int64_t c = first; c < last; ++c) {
      const Chunk& k = chunks[c];
      const FusedJob& job = jobs[k.job];
      update_range(job.p, job.g, job.m, job.v, k.begin, k.end, job.s);
    }
  });
}

bool fusable(const at::Tensor& p, const at::Tensor& g, const torch::optim::AdamWParamState& state) {
  const auto ok = [&](const at::Tensor& t) {
    return t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous() &&
           !t.is_sparse();
  };
  return ok(p) && ok(g) && ok(state.exp_avg()) && ok(state.exp_avg_sq());
}

// The same update with multi-tensor ops (CUDA, reduced-precision or strided parameters).
struct ForeachGroup {
  std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs;
  std::vector<at::Scalar> step_sizes, sqrt_bias_corrections2;

  void run(const torch::optim::AdamWOptions& o) {
    if (params.empty()) return;
    const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
    if (o.weight_decay() != 0) at::_foreach_mul_(params, 1 - o.lr() * o.weight_decay());
    at::_foreach_mul_(exp_avgs, beta1);
    at::_foreach_add_(exp_avgs, grads, 1 - beta1);
    at::_foreach_mul_(exp_avg_sqs, beta2);
    at::_foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2);
    std::vector<at::Tensor> denom = at::_foreach_sqrt(exp_avg_sqs);
    at::_foreach_div_(denom, sqrt_bias_corrections2);
    at::_foreach_add_(denom, o.eps());
    std::vector<at::Scalar> negative_steps;
    for (const at::Scalar& s : step_sizes) negative_steps.emplace_back(-s.toDouble());
    at::_foreach_addcdiv_(params, exp_avgs, denom, negative_steps);
  }
};

}  // namespace

torch::optim::AdamWParamState& FusedAdamW::state_for(const at::Tensor& p) {
  void* const key = p.unsafeGetTensorImpl();  // the key torch::optim files a parameter under
  auto it = state_.find(key);
  if (it == state_.end()) {
    auto state = std::make_unique<torch::optim::AdamWParamState>();
    state->step(0);
    state->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
    state->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
    it = state_.emplace(key, std::move(state)).first;
  }
  return static_cast<torch::optim::AdamWParamState&>(*it->second);
}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  for (const auto& group : param_groups())
    if (static_cast<const torch::optim::AdamWOptions&>(group.options()).amsgrad())
      return torch::optim::AdamW::step(std::move(closure));

  at::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  at::NoGradGuard no_grad;
  std::vector<FusedJob> fused;
  for (auto& group : param_groups()) {
    const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
    ForeachGroup foreach;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const at::Tensor& g = p.grad();
      TORCH_CHECK(!g.is_sparse(), "FusedAdamW does not support sparse gradients");
      auto& state = state_for(p);
      state.step(state.step() + 1);
      const UpdateScalars s = scalars_for(options, state.step());
      if (fusable(p, g, state)) {
        fused.push_back({p.data_ptr<float>(), g.data_ptr<float>(),
                         state.exp_avg().data_ptr<float>(), state.exp_avg_sq().data_ptr<float>(),
                         p.numel(), s});
        // Written through raw pointers: tell autograd these tensors changed, as in-place ops do.
        for (const at::Tensor* t : {&p, &state.exp_avg(), &state.exp_avg_sq()})
          t->unsafeGetTensorImpl()->bump_version();
      } else {
        foreach
          .params.push_back(p);
        foreach
          .grads.push_back(g);
        foreach
          .exp_avgs.push_back(state.exp_avg());
        foreach
          .exp_avg_sqs.push_back(state.exp_avg_sq());
        const double t = static_cast<double>(state.step());
        foreach
          .step_sizes.emplace_back(options.lr() / (1 - std::pow(std::get<0>(options.betas()), t)));
        foreach
          .sqrt_bias_corrections2.emplace_back(
              std::sqrt(1 - std::pow(std::get<1>(options.betas()), t)));
      }
    }
    foreach
      .run(options);
  }
  run_fused(fused);
  return loss;
}

}  // namespace harvest
