#include "eval/embedding_file.hpp"

#include <cstring>

#include "checkpoint/writer.hpp"
#include "core/error.hpp"

namespace harvest::eval {

namespace ck = harvest::checkpoint;

void write_embedding_file(const SavedEmbeddings& saved, const std::filesystem::path& out) {
  ck::Snapshot snap;
  snap.meta.torch_version = TORCH_VERSION;
  auto add_matrix = [&](const char* name, const at::Tensor& t) {
    const at::Tensor host = t.detach().to(at::kCPU, at::kFloat).contiguous();
    HARVEST_ASSERT(host.dim() == 2, name, " embeddings must be 2-D, got ", host.sizes());
    snap.add_copy(name, ck::DType::F32, host.sizes().vec(), host.data_ptr());
  };
  add_matrix("video", saved.video);
  add_matrix("text", saved.text);
  for (const auto& [name, values] : saved.indices)
    snap.add_copy(name, ck::DType::I64, {static_cast<int64_t>(values.size())}, values.data());
  snap.add_blob("protocol", saved.protocol_json);
  const std::filesystem::path parent = out.parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  ck::write_checkpoint_file(snap, out);
}

}  // namespace harvest::eval
