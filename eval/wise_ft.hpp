// WiSE-FT (Wortsman et al.): evaluate a weight-space average of the trained model and the model it
// started from (the imported CLIP). The recipe averages with alpha 0.5 and leaves the temporal
// embedding out (CLIP has none: it keeps the trained one).
#pragma once

#include <string>

#include "model/video_text_model.hpp"

namespace harvest::eval {

// The parameter kept from the trained model.
inline constexpr const char* kWiseFtExcluded = "visual.temporal_embedding";

// trained <- (1 - alpha) * trained + alpha * base, for every parameter and buffer except
// kWiseFtExcluded; alpha is the base model's weight ([eval] wise_ft_alpha). Throws Usage naming
// `base_origin` and every tensor that is missing from the base or shaped differently; nothing is
// changed then.
void wise_ft_average(VideoTextModelImpl& trained, VideoTextModelImpl& base, double alpha,
                     const std::string& base_origin);

}  // namespace harvest::eval
