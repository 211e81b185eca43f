// The embeddings an eval scored, saved so that anyone can recompute its metrics (docs/eval.md):
// an HDF5 file written through the checkpoint library (atomic: <file>.tmp, fsync, rename) with
//   /video          f32 [Nv, D]  L2-normalised, manifest order
//   /text           f32 [Nt, D]  L2-normalised (retrieval: captions; classification: one
//                                 template-ensembled embedding per class; mcqa: the candidates)
//   /text_to_video  i64 [Nt]     retrieval and mcqa: the video each text belongs to
//   /labels         i64 [Nv]     classification: each video's class (row of /text)
//   /answer         i64 [Nv]     mcqa: the right candidate (0-based, among the video's own)
//   /protocol       u8 JSON      the eval's protocol record
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace harvest::eval {

struct SavedEmbeddings {
  at::Tensor video;
  at::Tensor text;
  std::map<std::string, std::vector<int64_t>> indices;  // text_to_video, labels, answer
  std::string protocol_json;
};

void write_embedding_file(const SavedEmbeddings& saved, const std::filesystem::path& out);

}  // namespace harvest::eval
