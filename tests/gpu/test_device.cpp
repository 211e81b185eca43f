// What changes when the model and the training step leave the CPU, checked on the device named
// by HARVEST_TEST_DEVICE (cpu | cuda; default cpu): the model's forward + backward against a CPU
// copy, bf16 autocast, the fused attention kernel, FusedAdamW and the collective group.
//
// ctest runs the cpu variant on every build (the same code paths, so a GPU machine's minutes are
// not spent on a typo); scripts/gpu-check.sh runs HARVEST_TEST_DEVICE=cuda on a GPU machine.
// With cuda asked for and no GPU visible every case fails, naming the variable: a GPU check
// must never pass without a GPU.
#include "tests/support/torch_catch.hpp"

#include <torch/csrc/autograd/function.h>

#include <cmath>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/time.hpp"
#include "model/cuda_autocast.hpp"
#include "model/transformer.hpp"
#include "model/video_text_model.hpp"
#include "worker/comm_group.hpp"
#include "worker/fused_adamw.hpp"

namespace harvest {
namespace {

torch::Device device_under_test() {
  const char* env = std::getenv("HARVEST_TEST_DEVICE");
  const std::string name = env && *env ? env : "cpu";
  if (name == "cpu") return torch::kCPU;
  if (name != "cuda")
    throw std::runtime_error("HARVEST_TEST_DEVICE must be cpu or cuda, got '" + name + "'");
  if (!torch::cuda::is_available()) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    throw std::runtime_error(
        "HARVEST_TEST_DEVICE=cuda but LibTorch sees no CUDA device (torch::cuda::device_count() = " +
        std::to_string(torch::cuda::device_count()) + ", CUDA_VISIBLE_DEVICES=" +
        (visible ? "'" + std::string(visible) + "'" : std::string("unset")) +
        "); run on a GPU machine or set HARVEST_TEST_DEVICE=cpu");
  }
  return {torch::kCUDA, 0};
}

// ||actual - expected|| / ||expected||, in double on the CPU (0 when both are zero).
double relative_error(const at::Tensor& actual, const at::Tensor& expected) {
  const at::Tensor a = actual.detach().to(torch::kCPU, torch::kDouble);
  const at::Tensor e = expected.detach().to(torch::kCPU, torch::kDouble);
  const double diff = (a - e).norm().item<double>(), norm = e.norm().item<double>();
  return norm > 0 ? diff / norm : diff;
}

double scalar(const at::Tensor& t) { return t.detach().to(torch::kCPU, torch::kDouble).item<double>(); }

// Exact fp32 on CUDA while it lives: cuDNN (the patch-embedding convolution) may otherwise use
// TF32, whose 10-bit mantissa would dominate a CPU-vs-device comparison.
class ExactFloat32 {
 public:
  ExactFloat32()
      : cudnn_(at::globalContext().allowTF32CuDNN()), cublas_(at::globalContext().allowTF32CuBLAS()) {
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  ~ExactFloat32() {
    at::globalContext().setAllowTF32CuDNN(cudnn_);
    at::globalContext().setAllowTF32CuBLAS(cublas_);
  }
  ExactFloat32(const ExactFloat32&) = delete;
  ExactFloat32& operator=(const ExactFloat32&) = delete;

 private:
  bool cudnn_, cublas_;
};

// The tiny preset's structure (2 layers per tower, widths 128) on small inputs: 2 frames of
// 32 x 32 (4 patches each), captions of 16 tokens, a 512-id vocabulary.
ModelOptions small_options() {
  ModelOptions o = preset_options("tiny");
  o.vision.image_size = 32;
  o.vision.frames = 2;
  o.text.context_length = 16;
  o.vocab = VocabInfo{512, 510, 511};
  o.drop_ratio = 0.5;
  o.seed = 11;
  return o;
}

struct Batch {
  at::Tensor video;  // uint8 [B, T, H, W, 3]
  at::Tensor text;   // int64 [B, L]
  StepRandomness randomness;
};

// A CPU batch with captions of different lengths (padding after EOT) and the step's patch
// dropping and text masking drawn by a CPU model, so both devices see the same inputs.
Batch make_batch(const ModelOptions& o, VideoTextModel& cpu_model) {
  torch::manual_seed(5);
  const int64_t batch = 4, length = o.text.context_length;
  Batch b;
  b.video = torch::randint(0, 256, {batch, o.vision.frames, o.vision.image_size, o.vision.image_size, 3},
                           torch::kByte);
  b.text = torch::zeros({batch, length}, torch::kLong);
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t words = 4 + 3 * i;  // 4, 7, 10, 13 words
    b.text[i][0] = o.vocab.sot_id;
    b.text[i].narrow(0, 1, words).copy_(torch::randint(0, o.vocab.sot_id, {words}, torch::kLong));
    b.text[i][words + 1] = o.vocab.eot_id;
  }
  b.randomness = cpu_model->draw_randomness(batch, o.vision.frames, b.text, /*with_mlm=*/true);
  return b;
}

Batch to_device(const Batch& b, const torch::Device& device) {
  Batch d{b.video.to(device), b.text.to(device), {}};
  if (b.randomness.keep.defined()) d.randomness.keep = b.randomness.keep.to(device);
  if (b.randomness.masked)
    d.randomness.masked = MaskedText{b.randomness.masked->ids.to(device), b.randomness.masked->masked.to(device),
                                     b.randomness.masked->targets.to(device)};
  return d;
}

LossParts forward(VideoTextModel& model, const Batch& b) {
  auto single = make_single_worker_collective();
  return model->forward_with(normalize_video(b.video), b.text, *single, LossWeights{}, b.randomness);
}

// How many autograd nodes behind `root` recorded an output of each dtype: the graph remembers
// the dtype every forward op produced, so it shows which precision the forward really ran in.
std::map<at::ScalarType, int> graph_dtypes(const at::Tensor& root) {
  std::map<at::ScalarType, int> counts;
  std::set<const torch::autograd::Node*> seen;
  std::vector<const torch::autograd::Node*> pending{root.grad_fn().get()};
  while (!pending.empty()) {
    const torch::autograd::Node* node = pending.back();
    pending.pop_back();
    if (!node || !seen.insert(node).second) continue;
    for (uint32_t i = 0; i < node->num_inputs(); ++i)
      ++counts[c10::typeMetaToScalarType(node->input_metadata(i).dtype())];
    for (const torch::autograd::Edge& edge : node->next_edges()) pending.push_back(edge.function.get());
  }
  return counts;
}

}  // namespace

TEST_CASE("forward + backward on the device equal the CPU in fp32", "[gpu][model]") {
  const torch::Device device = device_under_test();
  const ExactFloat32 exact;
  const ModelOptions o = small_options();
  VideoTextModel cpu_model(o), device_model(o);  // same seed: same weights
  device_model->to(device);
  const Batch batch = make_batch(o, cpu_model);
  REQUIRE(batch.randomness.keep.defined());
  REQUIRE(batch.randomness.masked.has_value());

  const LossParts expected = forward(cpu_model, batch);
  const LossParts actual = forward(device_model, to_device(batch, device));
  expected.total.backward();
  actual.total.backward();
  CHECK(actual.total.device() == device);
  REQUIRE(actual.masked_tokens > 0);  // the MLM head took part
  CHECK(actual.masked_tokens == expected.masked_tokens);

  // fp32 kernels differ between devices only in summation order: relative 1e-5 on the losses,
  // 1e-4 on any parameter's gradient (norm-relative, so tiny elements do not dominate).
  CHECK(scalar(actual.total) == Approx(scalar(expected.total)).epsilon(1e-5));
  CHECK(scalar(actual.vtc) == Approx(scalar(expected.vtc)).epsilon(1e-5));
  CHECK(scalar(actual.mlm) == Approx(scalar(expected.mlm)).epsilon(1e-5));
  const auto cpu_params = cpu_model->named_parameters();
  const auto device_params = device_model->named_parameters();
  REQUIRE(cpu_params.size() == device_params.size());
  int compared = 0;
  for (const auto& item : cpu_params) {
    INFO("parameter " << item.key());
    const at::Tensor& on_device = device_params[item.key()];
    CHECK(on_device.device() == device);
    if (!item.value().grad().defined()) {
      CHECK(!on_device.grad().defined());
      continue;
    }
    REQUIRE(on_device.grad().defined());
    CHECK(relative_error(on_device.grad(), item.value().grad()) < 1e-4);
    ++compared;
  }
  CHECK(compared > 30);  // both towers, the fusion head and the temperature have gradients
}

TEST_CASE("bf16 autocast runs the forward in bf16 on CUDA and is a no-op on the CPU", "[gpu][model][bf16]") {
  const torch::Device device = device_under_test();
  const ExactFloat32 exact;
  const ModelOptions o = small_options();
  VideoTextModel cpu_model(o), model(o);
  model->to(device);
  const Batch batch = to_device(make_batch(o, cpu_model), device);

  const LossParts fp32 = forward(model, batch);
  model->set_bf16_autocast(true);
  const LossParts bf16 = forward(model, batch);
  CHECK_FALSE(cuda_autocast_enabled());  // the forward's scope restored the previous state

  const std::map<at::ScalarType, int> fp32_graph = graph_dtypes(fp32.total);
  const std::map<at::ScalarType, int> bf16_graph = graph_dtypes(bf16.total);
  CHECK(fp32_graph.count(at::kFloat) == 1);
  CHECK(fp32_graph.count(at::kBFloat16) == 0);
  if (device.is_cuda()) {
    // The matmuls produced bf16 (layer norms and the losses stay fp32, as autocast's lists say).
    REQUIRE(bf16_graph.count(at::kBFloat16) == 1);
    CHECK(bf16_graph.at(at::kBFloat16) > 20);
    // bf16 keeps 8 mantissa bits: the losses move by ~1e-2, well inside this bound, which a
    // wrong cast (fp16 overflow, a lost scale) would not meet.
    CHECK(std::abs(scalar(bf16.vtc) - scalar(fp32.vtc)) <= 0.05 + 0.02 * std::abs(scalar(fp32.vtc)));
    CHECK(std::abs(scalar(bf16.mlm) - scalar(fp32.mlm)) <= 0.05 + 0.02 * std::abs(scalar(fp32.mlm)));
    bf16.total.backward();
    for (const auto& item : model->named_parameters()) {
      if (!item.value().grad().defined()) continue;
      INFO("parameter " << item.key());
      CHECK(item.value().grad().scalar_type() == at::kFloat);  // master weights stay fp32
      CHECK(item.value().grad().isfinite().all().item<bool>());
    }
  } else {
    // set_bf16_autocast is CUDA-only: on the CPU the same forward, to the bit.
    CHECK(bf16_graph.count(at::kBFloat16) == 0);
    CHECK(torch::equal(bf16.total, fp32.total));
  }
}

TEST_CASE("harvest::attention equals softmax(q k^T / sqrt(d) + mask) v", "[gpu][model][attention]") {
  const torch::Device device = device_under_test();
  const ExactFloat32 exact;
  std::vector<at::ScalarType> dtypes{at::kFloat};
  if (device.is_cuda()) dtypes.push_back(at::kBFloat16);
  for (const at::ScalarType dtype : dtypes) {
    for (const bool causal : {false, true}) {
      INFO((dtype == at::kFloat ? "fp32" : "bf16") << (causal ? ", causal mask" : ", no mask"));
      torch::manual_seed(17);
      const int64_t batch = 2, heads = 4, length = 33, head_dim = 64;
      const auto cpu = torch::TensorOptions().dtype(torch::kFloat);
      // Inputs rounded to `dtype` once; the explicit reference runs in fp32 on those same values.
      const at::Tensor q0 = torch::randn({batch, heads, length, head_dim}, cpu).to(device, dtype);
      const at::Tensor k0 = torch::randn({batch, heads, length, head_dim}, cpu).to(device, dtype);
      const at::Tensor v0 = torch::randn({batch, heads, length, head_dim}, cpu).to(device, dtype);
      const at::Tensor upstream = torch::randn({batch, heads, length, head_dim}, cpu).to(device, dtype);
      const at::Tensor mask =
          causal ? causal_mask(length, torch::TensorOptions().dtype(torch::kFloat).device(device)) : at::Tensor();

      const at::Tensor q = q0.clone().requires_grad_(), k = k0.clone().requires_grad_(), v = v0.clone().requires_grad_();
      const at::Tensor out = attention(q, k, v, mask);
      out.backward(upstream);
      CHECK(out.scalar_type() == dtype);

      const at::Tensor qr = q0.to(torch::kFloat).requires_grad_(), kr = k0.to(torch::kFloat).requires_grad_(),
                       vr = v0.to(torch::kFloat).requires_grad_();
      at::Tensor scores = at::matmul(qr, kr.transpose(-2, -1)) / std::sqrt(static_cast<double>(head_dim));
      if (causal) scores = scores + mask;
      const at::Tensor expected = at::matmul(at::softmax(scores, -1), vr);
      expected.backward(upstream.to(torch::kFloat));

      // fp32: summation order only. bf16: the kernel rounds P and its output to 8 mantissa bits.
      const double tolerance = dtype == at::kFloat ? 1e-5 : 2e-2;
      CHECK(relative_error(out, expected) < tolerance);
      CHECK(relative_error(q.grad(), qr.grad()) < 2 * tolerance);
      CHECK(relative_error(k.grad(), kr.grad()) < 2 * tolerance);
      CHECK(relative_error(v.grad(), vr.grad()) < 2 * tolerance);
      if (causal) {  // the first query sees only the first key: its output is v[0]
        CHECK(relative_error(out.select(2, 0), v0.select(2, 0)) < tolerance);
      }
    }
  }
}

TEST_CASE("FusedAdamW equals LibTorch's AdamW on the device", "[gpu][worker][optim]") {
  const torch::Device device = device_under_test();
  // A large tensor (several of the CPU loop's chunks), a small one, a bias-like vector.
  const std::vector<std::vector<int64_t>> shapes{{300, 350}, {7, 9}, {64}};
  auto make_params = [&] {
    torch::manual_seed(3);
    std::vector<at::Tensor> p;
    for (const auto& shape : shapes) p.push_back(torch::randn(shape).to(device).requires_grad_());
    return p;
  };
  auto groups = [](const std::vector<at::Tensor>& p) {
    std::vector<torch::optim::OptimizerParamGroup> g;
    g.emplace_back(std::vector<at::Tensor>{p[0], p[1]},
                   std::make_unique<torch::optim::AdamWOptions>(
                       torch::optim::AdamWOptions(3e-2).betas({0.9, 0.98}).eps(1e-6).weight_decay(0.2)));
    g.emplace_back(std::vector<at::Tensor>{p[2]},
                   std::make_unique<torch::optim::AdamWOptions>(
                       torch::optim::AdamWOptions(3e-2).betas({0.9, 0.98}).eps(1e-6).weight_decay(0.0)));
    return g;
  };
  std::vector<at::Tensor> expected = make_params(), actual = make_params();
  const std::vector<at::Tensor> initial = make_params();
  torch::optim::AdamW reference(groups(expected), torch::optim::AdamWOptions(3e-2));
  FusedAdamW fused(groups(actual), torch::optim::AdamWOptions(3e-2));
  for (int step = 0; step < 5; ++step) {
    torch::manual_seed(100 + step);  // the same gradients for both, drawn on the CPU
    for (size_t i = 0; i < shapes.size(); ++i) {
      const at::Tensor g = torch::randn(shapes[i]).to(device);
      expected[i].mutable_grad() = g.clone();
      actual[i].mutable_grad() = g.clone();
    }
    reference.step();
    fused.step();
  }
  for (size_t i = 0; i < shapes.size(); ++i) {
    INFO("parameter " << i);
    CHECK(actual[i].device() == device);
    CHECK(torch::allclose(actual[i], expected[i], 1e-5, 1e-6));
    CHECK(relative_error(actual[i], initial[i]) > 1e-3);  // 5 steps of lr 3e-2 moved it
    const auto& state =
        static_cast<const torch::optim::AdamWParamState&>(*fused.state().at(actual[i].unsafeGetTensorImpl()));
    CHECK(state.step() == 5);
    CHECK(state.exp_avg().device() == device);
  }
}

namespace {

// The group a worker on `device` trains with: NCCL on CUDA; Gloo on the CPU where LibTorch's
// Gloo headers were found, else the in-process group.
std::unique_ptr<CommGroup> one_rank_group(const torch::Device& device) {
  if (device.is_cuda()) {
    if (!nccl_available())
      throw std::runtime_error("HARVEST_TEST_DEVICE=cuda: this build has no NCCL (HARVEST_HAVE_NCCL is off: the CUDA "
                               "toolkit or nccl.h/libnccl was not found at configure time, docs/build.md)");
    NcclRendezvous rendezvous;
    rendezvous.unique_id = new_nccl_unique_id();
    rendezvous.device = device.index();
    return make_nccl_group(rendezvous);
  }
#if defined(HARVEST_HAVE_GLOO)
  GlooRendezvous rendezvous;
  return make_gloo_group(rendezvous, serve_gloo_store(rendezvous.host, 0, 1, rendezvous.timeout_s));
#else
  return make_local_group();
#endif
}

// Runs `make(rank)` and `body(rank, group)` for ranks 0 and 1 on two threads (a group forms only
// when both ranks join); the first exception is rethrown here, where Catch may report it.
void on_two_ranks(const std::function<std::unique_ptr<CommGroup>(int)>& make,
                  const std::function<void(int, CommGroup&)>& body) {
  std::exception_ptr errors[2];
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        std::unique_ptr<CommGroup> group = make(rank);
        body(rank, *group);
      } catch (...) {
        errors[rank] = std::current_exception();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace

TEST_CASE("the device's collective group reduces known tensors", "[gpu][worker][collective]") {
  const torch::Device device = device_under_test();
  const Deadline deadline = Deadline::after_seconds(60);

  SECTION("one rank") {
    std::unique_ptr<CommGroup> group = one_rank_group(device);
    CHECK(group->size() == 1);
    if (device.is_cuda()) CHECK(group->backend() == "nccl");
    std::vector<at::ScalarType> dtypes{at::kFloat};
    if (device.is_cuda()) dtypes.push_back(at::kBFloat16);  // what bf16 gradient buckets would send
    for (const at::ScalarType dtype : dtypes) {
      at::Tensor t = torch::arange(12, torch::TensorOptions().dtype(dtype).device(device)).mul_(0.5);
      group->all_reduce_sum(t, deadline);
      CHECK(t.device() == device);
      CHECK(torch::equal(t.cpu(), torch::arange(12, torch::TensorOptions().dtype(dtype)).mul_(0.5)));
    }
    const at::Tensor local = torch::full({2, 3}, 7.0, torch::TensorOptions().device(device));
    CHECK(torch::equal(group->all_gather(local, deadline).cpu(), torch::full({2, 3}, 7.0)));
  }

  SECTION("two ranks") {
    std::function<std::unique_ptr<CommGroup>(int)> make;
    if (device.is_cuda()) {
      const int gpus = torch::cuda::device_count();
      if (gpus < 2) {
        WARN("2-rank NCCL group not run: torch::cuda::device_count() = " << gpus << ", needs 2");
        return;
      }
      const std::string id = new_nccl_unique_id();
      make = [id](int rank) {
        NcclRendezvous r;
        r.unique_id = id;
        r.rank = rank;
        r.world_size = 2;
        r.device = rank;  // one GPU per rank
        return make_nccl_group(r);
      };
    } else {
#if defined(HARVEST_HAVE_GLOO)
      const std::shared_ptr<GlooStore> store = serve_gloo_store("127.0.0.1", 0, 2, 60);
      make = [store](int rank) {
        GlooRendezvous r;
        r.port = store->port();
        r.rank = rank;
        r.world_size = 2;
        return make_gloo_group(r, rank == 0 ? store : nullptr);
      };
#else
      WARN("2-rank CPU group not run: this build has no Gloo (LibTorch's gloo headers not found)");
      return;
#endif
    }
    at::Tensor sums[2], gathered[2];
    on_two_ranks(make, [&](int rank, CommGroup& group) {
      const torch::Device mine = device.is_cuda() ? torch::Device(torch::kCUDA, rank) : device;
      // Rank r holds (r + 1) * [0, 1, ..., 7]: the sum is 3 * [0, ..., 7] on both.
      at::Tensor t = torch::arange(8, torch::TensorOptions().dtype(torch::kFloat).device(mine)).mul_(rank + 1);
      group.all_reduce_sum(t, deadline);
      sums[rank] = t.cpu();
      gathered[rank] = group.all_gather(torch::full({1, 2}, static_cast<double>(rank), t.options()), deadline).cpu();
    });
    const at::Tensor expected_sum = torch::arange(8, torch::kFloat).mul_(3);
    const at::Tensor expected_gather = torch::tensor({0.f, 0.f, 1.f, 1.f}).view({2, 2});
    for (int rank = 0; rank < 2; ++rank) {
      INFO("rank " << rank);
      CHECK(torch::equal(sums[rank], expected_sum));
      CHECK(torch::equal(gathered[rank], expected_gather));
    }
  }
}

}  // namespace harvest
