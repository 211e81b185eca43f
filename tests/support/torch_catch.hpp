// Include this instead of <catch2/catch.hpp> in tests that use LibTorch: LibTorch pulls in
// glog, whose CHECK macro (abort on failure) would otherwise replace Catch's CHECK.
#pragma once

#include <torch/torch.h>

#undef CHECK
#include <catch2/catch.hpp>
